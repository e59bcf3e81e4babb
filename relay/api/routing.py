"""How a route of the management API is declared, and how it is served.

A resource module (companies.py, webhooks.py, ...) lists its routes as `ApiRoute`s: method,
path, who may call it, its parameters and the schemas of its body and answer, and a plain
function that does the work. `starlette_route` serves one: it authenticates the caller,
checks the route's access, reads the JSON body, runs the function in a worker thread (at
most `API_THREADS` at once, so database work never runs on the event loop where intake
answers events, nor takes every pooled connection), and answers JSON. openapi.py describes
the same declarations, so the document lists exactly what is served.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import orjson
import sqlalchemy as sa
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.accounts.authenticator import Authenticator, challenge_headers
from relay.accounts.principal import Principal
from relay.db.jsonb import decode_json, require_json_content_type
from relay.errors import InputError
from relay.inbox.recovery_jobs import RecoveryJobs
from relay.inbox.store import EventInbox
from spool import DurableQueue, SpoolError, SpoolFullError

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
API_THREADS = 2  # the database engine pools 2 connections (+2 overflow) for everything
RETRY_AFTER_DATABASE = "5"
RETRY_AFTER_SPOOL = "5"
JsonSchema = dict[str, Any]


class Access(enum.Enum):
    """Who may call a route."""

    PUBLIC = "anyone, without a token"
    READ = "a token with scope read or admin"
    WRITE = "an admin user's token with scope admin"
    GLOBAL_WRITE = "an admin token that is not limited to companies"

    def check(self, principal: Principal) -> None:
        if self is Access.READ and not principal.can_read():
            raise InputError(
                403, "authorization", f"a token with scope {principal.scope} cannot read the API"
            )
        if self in (Access.WRITE, Access.GLOBAL_WRITE) and not principal.can_write():
            raise InputError(403, "authorization", f"this route needs {self.value}")
        if self is Access.GLOBAL_WRITE and not principal.every_company:
            raise InputError(403, "authorization", f"this route needs {self.value}")


@dataclass(frozen=True)
class SpoolAccess:
    """This relay's spool, as the API needs it: the log rows not drained yet (a search shows
    them as pending), the inbox a resend goes through, and the recovery jobs."""

    outbox: DurableQueue
    inbox: EventInbox
    jobs: RecoveryJobs
    wake_dispatcher: Callable[[], None]  # a resend is stored: deliver it now, not at the poll


@dataclass(frozen=True)
class Call:
    """What a route's function gets: who calls, the database and spool, and what was sent."""

    principal: Principal | None
    engine: Engine
    spool: SpoolAccess
    path: Mapping[str, str]
    query: Mapping[str, str]
    body: Mapping[str, object]

    @property
    def caller(self) -> Principal:
        """The authenticated caller (every route but the public ones has one)."""
        assert self.principal is not None
        return self.principal


@dataclass(frozen=True)
class Answer:
    status: int
    content: object


@dataclass(frozen=True)
class Param:
    """A query parameter, as the OpenAPI document describes it."""

    name: str
    description: str
    schema: JsonSchema = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class ApiRoute:
    """One route: `path` is relative to /api/v1, in OpenAPI's `{name}` template form."""

    method: str
    path: str
    summary: str
    access: Access
    handler: Callable[[Call], Answer]
    answer: JsonSchema
    status: int = 200
    body: JsonSchema | None = None
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()  # the 4xx answers besides authentication's (401/403/429)


@dataclass(frozen=True)
class ApiContext:
    engine: Engine
    spool: SpoolAccess
    authenticator: Authenticator
    max_body_bytes: int
    threads: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(API_THREADS)
    )


def starlette_route(route: ApiRoute, context: ApiContext) -> Route:
    async def endpoint(request: Request) -> Response:
        try:
            call = await _call(route, context, request)
            status, body = await anyio.to_thread.run_sync(
                functools.partial(_answered, route.handler, call), limiter=context.threads
            )
        except InputError as exc:
            return JSONResponse(exc.as_json(), exc.status, headers=challenge_headers(exc))
        except sa.exc.OperationalError as exc:
            log.warning("API %s %s: database unavailable: %s", route.method, route.path, exc)
            return JSONResponse(
                {"error": "the database is unavailable; retry later"},
                503,
                headers={"retry-after": RETRY_AFTER_DATABASE},
            )
        except SpoolFullError as exc:  # a resend refused, exactly as intake refuses an event
            log.warning("API %s %s: spool full: %s", route.method, route.path, exc)
            return _spool_unavailable("the spool is full; retry later")
        except SpoolError as exc:
            log.error("API %s %s: spool error: %s", route.method, route.path, exc)
            return _spool_unavailable("the spool is unavailable right now; retry later")
        except Exception:  # a defect: logged with its traceback, answered in JSON all the same
            log.exception("API %s %s failed", route.method, route.path)
            return JSONResponse({"error": "internal error"}, 500)
        return Response(body, status, media_type="application/json")

    return Route(PREFIX + route.path, endpoint, methods=[route.method], name=route.handler.__name__)


def _answered(handler: Callable[[Call], Answer], call: Call) -> tuple[int, bytes]:
    """The route's answer as JSON bytes, encoded in the worker thread too: a page of 500
    rows takes milliseconds to encode, which the event loop (intake's) must not spend."""
    answer = handler(call)
    return answer.status, orjson.dumps(answer.content)


def _spool_unavailable(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, 503, headers={"retry-after": RETRY_AFTER_SPOOL})


async def _call(route: ApiRoute, context: ApiContext, request: Request) -> Call:
    principal = None
    if route.access is not Access.PUBLIC:
        client = request.client.host if request.client else "unknown"
        principal = await context.authenticator.authenticate(
            request.headers.get("authorization"), client
        )
        route.access.check(principal)
    body: Mapping[str, object] = {}
    if route.body is not None:
        body = await _json_body(request, context.max_body_bytes)
    return Call(
        principal,
        context.engine,
        context.spool,
        dict(request.path_params),
        dict(request.query_params),
        body,
    )


async def _json_body(request: Request, limit: int) -> Mapping[str, object]:
    """The request's JSON object; an empty body is an empty object."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise InputError(413, "body", f"is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputError(413, "body", f"is larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    require_json_content_type(request.headers.get("content-type"))
    document = decode_json(raw)
    if not isinstance(document, dict):
        raise InputError(422, "body", "must be a JSON object")
    return document
