"""`/api/v1/executions`: search the execution log (rows still in this relay's spool included,
marked `pending`), and read one row with the body that was sent.

Both are the execution log's own functions (relay/execution_log/search.py), as the CLI's
`relay executions` uses them; a caller limited to companies sees only theirs, pending rows
included.
"""

from __future__ import annotations

from relay.api import params
from relay.api.routing import Access, Answer, ApiRoute, Call, Param
from relay.api.schemas import TIMESTAMP, UUID, page_of, ref
from relay.execution_log.search import (
    STATUSES,
    ExecutionQuery,
    get_execution,
    search_executions,
)

EXECUTION = "Execution"
EXECUTION_DETAIL = "ExecutionDetail"
_NULLABLE_UUID = {"type": ["string", "null"], "format": "uuid"}
_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_ITEM_PROPERTIES = {
    "execution_id": UUID,
    "created_at": TIMESTAMP,
    "company_id": _NULLABLE_UUID,
    "webhook_id": _NULLABLE_UUID,
    "event_type": _NULLABLE_TEXT,
    "message_id": {**_NULLABLE_TEXT, "description": "the `webhook-id` header sent"},
    "attempt": _NULLABLE_INT,
    "status": {"enum": [*STATUSES, None]},
    "response_status": _NULLABLE_INT,
    "error": _NULLABLE_TEXT,
    "duration_ms": _NULLABLE_INT,
    "phone_number": {**_NULLABLE_TEXT, "description": "digits only"},
    "pending": {
        "type": "boolean",
        "description": "still in this relay's spool, not yet in the database (about the "
        "last minute of results)",
    },
}
SCHEMAS = {
    EXECUTION: {
        "type": "object",
        "properties": _ITEM_PROPERTIES,
        "required": list(_ITEM_PROPERTIES),
    },
    EXECUTION_DETAIL: {
        "type": "object",
        "properties": {
            **_ITEM_PROPERTIES,
            "request_payload": {"description": "the JSON body that was POSTed"},
        },
        "required": [*_ITEM_PROPERTIES, "request_payload"],
    },
}
SEARCH_PARAMS = (
    Param("company_id", "one company", UUID),
    Param(
        "phone",
        "a phone number in any spelling: only its digits count (+55 (82) 98862-8425)",
    ),
    Param("status", "the attempt's result", {"enum": list(STATUSES)}),
    Param("event_type", "an event type of the catalog"),
    Param("webhook_id", "one webhook", UUID),
    Param("message_id", "one message: the `webhook-id` its receiver got"),
    Param("since", "ISO-8601 with an offset; default: a week before `until`", TIMESTAMP),
    Param("until", "ISO-8601 with an offset, exclusive; default: now", TIMESTAMP),
    *params.PAGE_PARAMS,
)


def search_log(call: Call) -> Answer:
    query = ExecutionQuery.from_params(call.query)
    page = search_executions(call.engine, call.spool.outbox, query, companies=call.caller.companies)
    return Answer(200, page.as_json())


def show_execution(call: Call) -> Answer:
    execution_id = params.path_id(call, "execution_id")
    detail = get_execution(
        call.engine, call.spool.outbox, execution_id, companies=call.caller.companies
    )
    return Answer(200, detail.as_json())


ROUTES = (
    ApiRoute(
        "GET",
        "/executions",
        "Search the execution log, newest first, rows still in the spool included (pending); "
        "keyset pages within a time window (default the last 7 days)",
        Access.READ,
        search_log,
        page_of(EXECUTION),
        query=SEARCH_PARAMS,
        errors=(422,),
    ),
    ApiRoute(
        "GET",
        "/executions/{execution_id}",
        "One execution with the body that was sent, from the database or the spool",
        Access.READ,
        show_execution,
        ref(EXECUTION_DETAIL),
        errors=(404, 422),
    ),
)
