"""The inputs of a log query, read the same way for every face (API, CLI, console).

Each bad value raises `InputError(422, field, message)` naming the field, so the API answers
422 and the CLI exits 2 with one line, from the same check.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relay.errors import InputError
from relay.execution_log.record import PHONE_MAX_DIGITS, phone_number_of

# A search without a window reads the last week: PostgreSQL then prunes every older month.
DEFAULT_WINDOW = timedelta(days=7)


def parse_uuid(field: str, text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InputError(422, field, f"is not a valid UUID: {text!r}") from None


def parse_time(field: str, text: str) -> datetime:
    """An ISO-8601 instant with its offset (`2026-12-03T10:00:00Z`, `...-03:00`)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(422, field, f"is not an ISO-8601 date and time: {text!r}") from None
    return aware(field, moment)


def aware(field: str, moment: datetime) -> datetime:
    """`moment` in UTC; a time without an offset is ambiguous and refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(422, field, "needs a time zone offset (for example Z or -03:00)")
    return moment.astimezone(UTC)


def parse_int(field: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(422, field, f"is not an integer: {text!r}") from None


def normalised_phone(text: str) -> str:
    """A number as the log stores it: its digits (`+55 (82) 98862-8425` -> `5582988628425`)."""
    digits = phone_number_of({"number": text})
    if digits is None:
        raise InputError(422, "phone", f"is not a phone number (1 to {PHONE_MAX_DIGITS} digits)")
    return digits


@dataclass(frozen=True)
class Window:
    """A half-open time range [since, until) in UTC: every log query has one."""

    since: datetime
    until: datetime

    @classmethod
    def of(
        cls,
        since: datetime | None,
        until: datetime | None,
        now: datetime,
        default: timedelta = DEFAULT_WINDOW,
    ) -> Window:
        """The window asked for; `until` defaults to `now`, `since` to `default` before it."""
        end = aware("until", until) if until is not None else now.astimezone(UTC)
        start = aware("since", since) if since is not None else end - default
        if start >= end:
            raise InputError(422, "since", "must be before until")
        return cls(start, end)
