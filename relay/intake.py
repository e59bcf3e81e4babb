"""The intake HTTP app: `POST /v1/events` answers 202 only once the event is in the spool.

Every client mistake is a 4xx with a JSON message naming the field; a full spool or a
shutdown is a 503 with `Retry-After`. Blocking spool work runs in worker threads, where the
spool's group commit batches concurrent requests into one fsync.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.delivery import deliveries_for
from relay.event_input import InputError, parse_event
from relay.inbox import EventInbox
from relay.metrics import INTAKE_RESPONSES
from relay.registry import Registry
from spool import Clock, SpoolError, SpoolFullError

log = logging.getLogger(__name__)

EVENTS_PATH = "/v1/events"
RETRY_AFTER_FULL = "30"
RETRY_AFTER_STOPPING = "5"


@dataclass
class IntakeState:
    """What the intake needs, and the switch that turns it away during shutdown."""

    inbox: EventInbox
    registry: Registry
    clock: Clock
    max_body_bytes: int
    token: str | None
    on_accepted: Callable[[], None]
    accepting: bool = True


def create_intake_app(state: IntakeState, extra_routes: Sequence[Route] = ()) -> Starlette:
    """The intake route, plus `extra_routes` (the operator's endpoints)."""

    async def post_event(request: Request) -> Response:
        try:
            response = await _post_event(state, request)
        except InputError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            response = JSONResponse(exc.as_json(), status_code=exc.status, headers=headers)
        INTAKE_RESPONSES.labels(str(response.status_code)).inc()
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path == EVENTS_PATH:  # e.g. 405, 413 raised before post_event answers
            INTAKE_RESPONSES.labels(str(exc.status_code)).inc()
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    return Starlette(
        routes=[Route(EVENTS_PATH, post_event, methods=["POST"]), *extra_routes],
        exception_handlers={HTTPException: http_error},
    )


async def _post_event(state: IntakeState, request: Request) -> Response:
    if not state.accepting:
        return _unavailable("the relay is shutting down", RETRY_AFTER_STOPPING)
    _authorize(state.token, request.headers.get("authorization"))
    _check_content_type(request.headers.get("content-type"))
    body = await _read_body(request, state.max_body_bytes)
    event = parse_event(body)
    snapshot = state.registry.snapshot
    if not state.registry.loaded:
        return _unavailable("the webhook registry is not loaded yet", RETRY_AFTER_STOPPING)
    company = snapshot.companies.get(event.company_id)
    if company is None or not company.active:
        raise InputError(404, "company_id", f"unknown or inactive company {event.company_id}")
    if event.event not in snapshot.event_ids:
        raise InputError(422, "event", f"unknown event {event.event!r}")
    event_id = event.id or str(uuid.uuid4())
    deliveries = deliveries_for(snapshot, event, event_id, state.clock())
    try:
        receipt = await anyio.to_thread.run_sync(
            lambda: state.inbox.accept(event.company_id, event_id, deliveries, caller_id=event.id)
        )
    except SpoolFullError as exc:
        log.warning("intake refused (spool full): %s", exc)
        return _unavailable("the spool is full; retry later", RETRY_AFTER_FULL)
    except SpoolError as exc:
        log.error("intake could not store an event: %s", exc)
        return _unavailable("the spool cannot store events right now", RETRY_AFTER_FULL)
    if receipt.deliveries and not receipt.duplicate:
        state.on_accepted()
    return JSONResponse({"id": receipt.id, "deliveries": receipt.deliveries}, status_code=202)


def _authorize(token: str | None, header: str | None) -> None:
    if token is None:
        return
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise InputError(401, "authorization", "missing bearer token")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise InputError(401, "authorization", "invalid bearer token")


def _check_content_type(value: str | None) -> None:
    media_type = (value or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise InputError(415, "content-type", "must be application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InputError(413, "body", f"is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise InputError(413, "body", f"is larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise InputError(400, "body", "the client went away before sending it all") from None
    return b"".join(chunks)


def _unavailable(message: str, retry_after: str) -> Response:
    return JSONResponse({"error": message}, status_code=503, headers={"Retry-After": retry_after})
