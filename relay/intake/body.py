"""Reading an intake body: bytes in, a validated event or a 4xx naming the field out.

Pure functions, so every bad-input path is tested without a server. Anything a client can
send ends in `EventInput` or `InputError`: never an exception that would become a 500.
"""

from __future__ import annotations

import uuid
from typing import Any

from relay.db.jsonb import decode_json
from relay.errors import InputError
from relay.inbox.deliveries import EventInput

MAX_ID_LENGTH = 200
MAX_EVENT_LENGTH = 100


def parse_event(body: bytes) -> EventInput:
    document = decode_json(body)
    if not isinstance(document, dict):
        raise InputError(422, "body", "must be a JSON object")
    return EventInput(
        company_id=_uuid(document.get("company_id"), "company_id"),
        event=_event_name(document.get("event")),
        data=_data(document),
        id=_caller_id(document.get("id")),
    )


def _uuid(value: object, field: str) -> uuid.UUID:
    if value is None:
        raise InputError(422, field, "is required")
    if not isinstance(value, str):
        raise InputError(422, field, "must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InputError(422, field, f"is not a valid UUID: {value[:64]!r}") from None


def _event_name(value: object) -> str:
    if value is None:
        raise InputError(422, "event", "is required")
    if not isinstance(value, str) or not value.strip():
        raise InputError(422, "event", "must be a non-empty string")
    if len(value) > MAX_EVENT_LENGTH:
        raise InputError(422, "event", f"must be at most {MAX_EVENT_LENGTH} characters")
    return value


def _data(document: dict[str, Any]) -> dict[str, Any]:
    if "data" not in document:
        raise InputError(422, "data", "is required")
    value = document["data"]
    if not isinstance(value, dict):
        raise InputError(422, "data", "must be a JSON object")
    return value


def _caller_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(422, "id", "must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise InputError(422, "id", f"must be at most {MAX_ID_LENGTH} characters")
    return value
