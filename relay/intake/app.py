"""The intake HTTP app: `POST /v1/events` answers 202 only once the event is in the spool.

Every client mistake is a 4xx with a JSON message naming the field; a full spool or a
shutdown is a 503 with `Retry-After`. Events go to the spool in batches, one transaction
and one fsync for the requests that arrived meanwhile (relay/intake_batch.py).
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Lifespan, Receive, Scope, Send

from relay.accounts.authenticator import Authenticator, challenge_headers
from relay.accounts.credentials import looks_like_token
from relay.accounts.principal import Principal
from relay.db.jsonb import require_json_content_type
from relay.errors import InputError
from relay.inbox.deliveries import deliveries_for
from relay.inbox.store import Acceptance
from relay.intake.batching import AcceptBatcher
from relay.intake.body import parse_event
from relay.ops.metrics import INTAKE_RESPONSES
from relay.registry.cache import Registry
from spool import Clock, SpoolError, SpoolFullError

log = logging.getLogger(__name__)

EVENTS_PATH = "/v1/events"
RETRY_AFTER_FULL = "30"
RETRY_AFTER_STOPPING = "5"


@dataclass
class IntakeState:
    """What the intake needs, and the switch that turns it away during shutdown."""

    accepts: AcceptBatcher
    registry: Registry
    clock: Clock
    max_body_bytes: int
    token: str | None
    on_accepted: Callable[[], None]
    authenticator: Authenticator | None = None  # API tokens with scope events (or admin)
    accepting: bool = True


class EventsEndpoint:
    """`POST /v1/events` on the raw ASGI interface. Starlette's request, response and
    middleware layers were about a fifth of intake's sampled Python time (py-spy at 500
    events/s); without them intake used 5-8% less CPU per event, headroom the relay's
    2-core budget needs, and the route is simple enough to serve without them."""

    def __init__(self, state: IntakeState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            answer = await _post_event(self.state, _wanted_headers(scope), _client(scope), receive)
        except InputError as exc:
            answer = JsonAnswer(exc.status, exc.as_json(), challenge_headers(exc))
        INTAKE_RESPONSES.labels(str(answer.status)).inc()
        await answer.send(send)


class IntakeApp:
    """The ASGI app: `POST /v1/events` goes straight to its endpoint; everything else (the
    operator's routes, 404 and 405 answers, the lifespan) to a Starlette app, whose router
    also knows the endpoint (for a path it spells differently, say under a root path)."""

    def __init__(self, events: EventsEndpoint, fallback: ASGIApp) -> None:
        self.events = events
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == EVENTS_PATH:
            await self.events(scope, receive, send)
        else:
            await self.fallback(scope, receive, send)


@dataclass(frozen=True)
class JsonAnswer:
    """A JSON response, sent on the raw ASGI interface."""

    status: int
    content: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    async def send(self, send: Send) -> None:
        try:
            body = orjson.dumps(self.content)
        except TypeError:  # a lone surrogate echoed from the input: json escapes it
            body = json.dumps(self.content, separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        headers += [(name.encode(), value.encode()) for name, value in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def create_intake_app(
    state: IntakeState,
    extra_routes: Sequence[Route] = (),
    lifespan: Lifespan[Starlette] | None = None,
) -> IntakeApp:
    """The intake route, plus `extra_routes` (the operator's endpoints)."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path == EVENTS_PATH:  # e.g. 405 for a GET
            INTAKE_RESPONSES.labels(str(exc.status_code)).inc()
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    events = EventsEndpoint(state)
    fallback = Starlette(
        routes=[Route(EVENTS_PATH, events, methods=["POST"]), *extra_routes],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    return IntakeApp(events, fallback)


async def _post_event(
    state: IntakeState, headers: dict[bytes, str], client: str, receive: Receive
) -> JsonAnswer:
    if not state.accepting:
        return _unavailable("the relay is shutting down", RETRY_AFTER_STOPPING)
    principal = await _authorize(state, headers.get(b"authorization"), client)
    require_json_content_type(headers.get(b"content-type"))
    body = await _read_body(receive, headers.get(b"content-length"), state.max_body_bytes)
    event = parse_event(body)
    if principal is not None and not principal.sees(event.company_id):
        raise InputError(403, "company_id", f"this token may not post events of {event.company_id}")
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
        receipt = await state.accepts.accept(
            Acceptance(event.company_id, event_id, deliveries, caller_id=event.id)
        )
    except SpoolFullError as exc:
        log.warning("intake refused (spool full): %s", exc)
        return _unavailable("the spool is full; retry later", RETRY_AFTER_FULL)
    except SpoolError as exc:
        log.error("intake could not store an event: %s", exc)
        return _unavailable("the spool cannot store events right now", RETRY_AFTER_FULL)
    if receipt.deliveries and not receipt.duplicate:
        state.on_accepted()
    return JsonAnswer(202, {"id": receipt.id, "deliveries": receipt.deliveries})


_WANTED_HEADERS = frozenset((b"authorization", b"content-type", b"content-length"))


def _wanted_headers(scope: Scope) -> dict[bytes, str]:
    """The request headers intake reads (names are lower-case in ASGI); the first of a
    repeated header counts, as with Starlette's `Headers.get`."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _WANTED_HEADERS and name not in found:
            found[name] = value.decode("latin-1")
    return found


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _authorize(state: IntakeState, header: str | None, client: str) -> Principal | None:
    """None when the intake token (or, without one, nothing) lets the caller in; the token's
    principal for an API token, whose companies the event must then belong to."""
    token = state.token
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        if token is None:
            return None
        raise InputError(401, "authorization", "missing bearer token")
    given = given.strip()
    if token is not None and hmac.compare_digest(given.encode(), token.encode()):
        return None
    if state.authenticator is not None and looks_like_token(given):
        principal = await state.authenticator.token_principal(given, client)
        if not principal.can_post_events():
            raise InputError(
                403, "authorization", f"a token with scope {principal.scope} cannot post events"
            )
        return principal
    if token is None:
        return None
    raise InputError(401, "authorization", "invalid bearer token")


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InputError(413, "body", f"is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InputError(400, "body", "the client went away before sending it all")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise InputError(413, "body", f"is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _unavailable(message: str, retry_after: str) -> JsonAnswer:
    return JsonAnswer(503, {"error": message}, {"retry-after": retry_after})
