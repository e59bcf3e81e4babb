"""The management API's routes, mounted under /api/v1 on the relay's own HTTP server.

A resource is one module with `ROUTES` (its `ApiRoute`s) and `SCHEMAS` (its OpenAPI
components); adding one is adding it to `RESOURCES`.
"""

from __future__ import annotations

from types import ModuleType

from sqlalchemy import Engine
from starlette.routing import Route

from relay.accounts.authenticator import Authenticator
from relay.api import (
    accounts,
    companies,
    dead_letters,
    event_types,
    executions,
    messages,
    openapi,
    recovery,
    schemas,
    stats,
    webhooks,
)
from relay.api.routing import (
    Access,
    Answer,
    ApiContext,
    ApiRoute,
    Call,
    SpoolAccess,
    starlette_route,
)

RESOURCES: tuple[ModuleType, ...] = (
    companies,
    webhooks,
    event_types,
    executions,
    messages,
    recovery,
    stats,
    dead_letters,
    accounts,
)


def api_routes(
    engine: Engine, spool: SpoolAccess, authenticator: Authenticator, *, max_body_bytes: int
) -> list[Route]:
    """Every route of every resource, and `GET /api/v1/openapi.json` describing them all."""

    def openapi_document(_call: Call) -> Answer:
        return Answer(200, described)

    declared: list[ApiRoute] = [route for resource in RESOURCES for route in resource.ROUTES]
    declared.append(
        ApiRoute(
            "GET",
            "/openapi.json",
            "This document (OpenAPI 3.1)",
            Access.PUBLIC,
            openapi_document,
            {"type": "object"},
        )
    )
    components = dict(schemas.COMPONENTS)
    for resource in RESOURCES:
        components.update(resource.SCHEMAS)
    described = openapi.document(declared, components)
    context = ApiContext(engine, spool, authenticator, max_body_bytes)
    return [starlette_route(route, context) for route in declared]
