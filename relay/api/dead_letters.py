"""`/api/v1/dead-letters`: execution-log rows the database refused, kept in this relay's
spool with why; retry them (back in the queue, same ids) or purge them, as
`relay spool dead-letters ...` does.

A dead letter's key is its company: a caller limited to companies sees and acts on theirs
only; retrying or purging them all needs a token of every company.
"""

from __future__ import annotations

from relay.api import params
from relay.api.routing import Access, Answer, ApiRoute, Call
from relay.api.schemas import TIMESTAMP, ref
from relay.errors import InputError
from spool import DeadLetter

DEAD_LETTER = "DeadLetter"
SCHEMAS = {
    DEAD_LETTER: {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "company_id": {"type": "string"},
            "error": {"type": "string"},
            "failed_at": TIMESTAMP,
            "enqueued_at": TIMESTAMP,
        },
        "required": ["id", "company_id", "error", "failed_at", "enqueued_at"],
    }
}
SELECTION = {
    "type": "object",
    "properties": {
        "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "all": {"type": "boolean", "description": "every dead letter the caller may see"},
    },
    "additionalProperties": False,
}


def dead_letter_json(letter: DeadLetter) -> dict[str, object]:
    return {
        "id": letter.id,
        "company_id": letter.key,
        "error": letter.error,
        "failed_at": letter.failed_at.isoformat(),
        "enqueued_at": letter.enqueued_at.isoformat(),
    }


def list_dead_letters(call: Call) -> Answer:
    letters = _visible(call)
    return Answer(200, {"items": [dead_letter_json(d) for d in letters], "total": len(letters)})


def retry_dead_letters(call: Call) -> Answer:
    ids = _selected(call)
    return Answer(200, {"retried": call.spool.outbox.retry_dead_letters(ids)})


def purge_dead_letters(call: Call) -> Answer:
    ids = _selected(call)
    return Answer(200, {"purged": call.spool.outbox.purge_dead_letters(ids)})


def _visible(call: Call) -> list[DeadLetter]:
    letters = call.spool.outbox.dead_letters()
    companies = call.caller.companies
    if companies is None:
        return letters
    allowed = {str(company) for company in companies}
    return [letter for letter in letters if letter.key in allowed]


def _selected(call: Call) -> list[str]:
    """The ids to act on: those named (each must be one the caller sees), or all of theirs."""
    params.only_fields(call.body, ("ids", "all"))
    ids = params.string_list(call.body, "ids")
    every = params.boolean(call.body, "all")
    if (ids is None) == (every is not True):
        raise InputError(422, "ids", "give the dead letters' ids, or all: true")
    visible = {letter.id for letter in _visible(call)}
    if ids is None:
        return sorted(visible)
    unknown = [one for one in ids if one not in visible]
    if unknown:
        raise InputError(404, "ids", f"no such dead letter: {', '.join(unknown[:5])}")
    return ids


ROUTES = (
    ApiRoute(
        "GET",
        "/dead-letters",
        "List the execution-log rows the database refused, with why, oldest first",
        Access.READ,
        list_dead_letters,
        {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": ref(DEAD_LETTER)},
                "total": {"type": "integer"},
            },
            "required": ["items", "total"],
        },
    ),
    ApiRoute(
        "POST",
        "/dead-letters/retry",
        "Put dead letters back in the queue (the same ids: the database still dedupes them)",
        Access.WRITE,
        retry_dead_letters,
        {"type": "object", "properties": {"retried": {"type": "integer"}}},
        body=SELECTION,
        errors=(404, 413, 415, 422),
    ),
    ApiRoute(
        "POST",
        "/dead-letters/purge",
        "Delete dead letters for good",
        Access.WRITE,
        purge_dead_letters,
        {"type": "object", "properties": {"purged": {"type": "integer"}}},
        body=SELECTION,
        errors=(404, 413, 415, 422),
    ),
)
