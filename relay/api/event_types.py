"""`/api/v1/events`: the event catalog, the types webhooks subscribe to and intake accepts."""

from __future__ import annotations

from relay.api import params
from relay.api.routing import Access, Answer, ApiRoute, Call
from relay.api.schemas import page_of, ref
from relay.registry import listing, writes
from relay.registry.listing import EventType

EVENT_TYPE = "EventType"
SCHEMAS = {
    EVENT_TYPE: {
        "type": "object",
        "properties": {
            "name": {"type": "string", "examples": ["call-history-was-created"]},
            "display_name": {"type": ["string", "null"]},
            "id_path": {
                "type": ["string", "null"],
                "description": "where its events carry their own id; the platform source "
                "drops a repeat of an id it has seen",
                "examples": ["callHistory._id"],
            },
        },
        "required": ["name", "display_name", "id_path"],
    }
}


def event_type_json(event_type: EventType) -> dict[str, object]:
    return {
        "name": event_type.name,
        "display_name": event_type.display_name,
        "id_path": event_type.id_path,
    }


def list_event_types(call: Call) -> Answer:
    page = listing.event_types_page(
        call.engine, limit=params.limit(call), cursor=params.cursor(call)
    )
    return Answer(
        200, {"items": [event_type_json(e) for e in page.items], "next_cursor": page.next_cursor}
    )


def add_event_type(call: Call) -> Answer:
    params.only_fields(call.body, ("name", "display_name", "id_path"))
    name = params.text(call.body, "name", required=True)
    assert name is not None
    added = writes.add_event_type(
        call.engine,
        name,
        params.text(call.body, "display_name"),
        params.text(call.body, "id_path"),
    )
    return Answer(201, event_type_json(added))


ROUTES = (
    ApiRoute(
        "GET",
        "/events",
        "List the event catalog by name",
        Access.READ,
        list_event_types,
        page_of(EVENT_TYPE),
        query=params.PAGE_PARAMS,
        errors=(422,),
    ),
    ApiRoute(
        "POST",
        "/events",
        "Add an event type",
        Access.GLOBAL_WRITE,
        add_event_type,
        ref(EVENT_TYPE),
        status=201,
        body={
            "type": "object",
            "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"},
                "display_name": {"type": ["string", "null"], "maxLength": 255},
                "id_path": {"type": ["string", "null"], "maxLength": 200},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        errors=(409, 413, 415, 422),
    ),
)
