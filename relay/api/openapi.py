"""The OpenAPI 3.1 document of `/api/v1`, made from the same route declarations that are
served, so it cannot list a route that does not exist or miss one that does."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from relay import __version__
from relay.api.routing import PREFIX, Access, ApiRoute, JsonSchema
from relay.api.schemas import ERROR, UUID, ref

ERROR_MEANINGS = {
    401: "missing, unknown, revoked or disabled token",
    403: "the token's scope or companies do not allow this",
    404: "no such object, or one of a company the caller may not see",
    409: "conflicts with what exists",
    413: "body too large",
    415: "body is not application/json",
    422: "a field is missing, of the wrong type or invalid; `field` names it",
    429: "too many failed authentications from this address; see Retry-After",
    503: "the database or the spool is unavailable, or the spool is full; see Retry-After",
}
AUTHENTICATION_ERRORS = (401, 403, 429)
TEXT_PATH_PARAMS = frozenset({"message_id", "job_id", "user_name"})  # the rest are UUIDs
_PATH_PARAM = re.compile(r"{([a-z_]+)}")


def document(routes: Sequence[ApiRoute], schemas: Mapping[str, JsonSchema]) -> JsonSchema:
    paths: dict[str, dict[str, JsonSchema]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "webhook-relay management API",
            "version": __version__,
            "description": "Companies, webhooks, the event catalog, the execution log, "
            "messages, resends and recovery jobs, and counts. Every route but this "
            "document needs `Authorization: Bearer <token>` (`relay tokens create`).",
        },
        "servers": [{"url": PREFIX}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": dict(schemas),
        },
    }


def _operation(route: ApiRoute) -> JsonSchema:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"} if name in TEXT_PATH_PARAMS else UUID,
        }
        for name in _PATH_PARAM.findall(route.path)
    ] + [
        {"name": p.name, "in": "query", "description": p.description, "schema": p.schema}
        for p in route.query
    ]
    responses: dict[str, JsonSchema] = {
        str(route.status): {
            "description": route.summary,
            "content": {"application/json": {"schema": route.answer}},
        }
    }
    errors = list(route.errors)
    if route.access is not Access.PUBLIC:
        errors += [*AUTHENTICATION_ERRORS, 503]
    for status in sorted(set(errors)):
        responses[str(status)] = {
            "description": ERROR_MEANINGS[status],
            "content": {"application/json": {"schema": ref(ERROR)}},
        }
    operation: JsonSchema = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "description": f"Who may call it: {route.access.value}.",
        "parameters": parameters,
        "responses": responses,
    }
    if route.body is not None:
        operation["requestBody"] = {
            "required": route.method == "POST",
            "content": {"application/json": {"schema": route.body}},
        }
    if route.access is Access.PUBLIC:
        operation["security"] = []
    return operation
