"""Reading what a client sent (path, query, JSON body) into typed values, or a 4xx naming
the field: the API's routes never see a value of the wrong type."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping

from relay.api.routing import Call, Param
from relay.errors import InputError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

LIMIT = Param(
    "limit",
    f"items per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
)
CURSOR = Param("cursor", "`next_cursor` of the previous page")
PAGE_PARAMS = (CURSOR, LIMIT)


def path_id(call: Call, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(call.path[name])
    except ValueError:
        raise InputError(422, name, f"is not a valid UUID: {call.path[name][:64]!r}") from None


def limit(call: Call) -> int:
    text = call.query.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InputError(422, "limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


def cursor(call: Call) -> str | None:
    return call.query.get("cursor") or None


def query_choice(call: Call, name: str, choices: Collection[str]) -> str | None:
    value = call.query.get(name)
    if value is not None and value not in choices:
        raise InputError(422, name, f"must be one of {', '.join(choices)}, not {value[:64]!r}")
    return value


def only_query_params(call: Call, allowed: Collection[str]) -> None:
    """Refuse a query parameter the route does not know (a misspelt filter would otherwise
    widen the answer silently)."""
    for key in call.query:
        if key not in allowed:
            raise InputError(
                422, key, f"is not a parameter of this route (parameters: {', '.join(allowed)})"
            )


def only_fields(body: Mapping[str, object], allowed: Collection[str]) -> None:
    """Refuse a field the route does not know (a typo would otherwise change nothing)."""
    for key in body:
        if key not in allowed:
            raise InputError(
                422, key, f"is not a field of this body (fields: {', '.join(allowed)})"
            )


def text(body: Mapping[str, object], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InputError(422, name, "is required")
        return None
    if not isinstance(value, str):
        raise InputError(422, name, "must be a string")
    return value


def boolean(body: Mapping[str, object], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise InputError(422, name, "must be true or false")
    return value


def string_list(
    body: Mapping[str, object], name: str, *, required: bool = False
) -> list[str] | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InputError(422, name, "is required")
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InputError(422, name, "must be an array of strings")
    return value
