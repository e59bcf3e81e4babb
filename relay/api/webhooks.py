"""`/api/v1/companies/{id}/webhooks` and `/api/v1/webhooks/{id}`: subscribe URLs to events,
with filters; edit, enable or disable, delete (soft), rotate the signing secret.

A signing secret appears only in the answer that made it (`"secret": true` on create, or
rotate-secret), never in a read.
"""

from __future__ import annotations

from collections.abc import Mapping

from relay.api import params
from relay.api.routing import Access, Answer, ApiRoute, Call
from relay.api.schemas import TIMESTAMP, UUID, deleted, page_of, ref
from relay.api.visibility import visible_company, visible_webhook
from relay.errors import InputError
from relay.registry import listing, writes
from relay.registry.filters import Filter, InvalidFilter, parse_filters
from relay.registry.listing import WebhookRow

WEBHOOK = "Webhook"
FILTER = "Filter"
CREATE_FIELDS = ("url", "events", "name", "filters", "secret")
EDIT_FIELDS = ("url", "name", "events", "filters", "enabled")

_FILTERS = {
    "type": "object",
    "description": "per event, the filters its data must all pass (relay/registry/filters.py)",
    "additionalProperties": {"type": "array", "items": ref(FILTER)},
}
_EVENTS = {"type": "array", "items": {"type": "string"}, "minItems": 1}
_URL = {"type": "string", "format": "uri", "description": "absolute http(s) URL"}
_NAME = {"type": ["string", "null"], "maxLength": 255}
SCHEMAS = {
    FILTER: {
        "type": "object",
        "properties": {
            "field_path": {"type": "string", "examples": ["callHistory.campaign.id"]},
            "operator": {
                "enum": [
                    "equals",
                    "not_equals",
                    "greater_than",
                    "less_than",
                    "contains",
                    "not_contains",
                ]
            },
            "value": {},
        },
        "required": ["field_path", "operator", "value"],
        "additionalProperties": False,
    },
    WEBHOOK: {
        "type": "object",
        "properties": {
            "id": UUID,
            "company_id": UUID,
            "name": _NAME,
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string"}},
            "filters": _FILTERS,
            "enabled": {"type": "boolean"},
            "signed": {"type": "boolean", "description": "whether it has a signing secret"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "secret": {
                "type": "string",
                "pattern": "^whsec_",
                "description": "only in the answer that made the secret",
            },
        },
        "required": [
            "id",
            "company_id",
            "name",
            "url",
            "events",
            "filters",
            "enabled",
            "signed",
            "created_at",
            "updated_at",
        ],
    },
}


def webhook_json(webhook: WebhookRow, secret: str | None = None) -> dict[str, object]:
    document: dict[str, object] = {
        "id": str(webhook.id),
        "company_id": str(webhook.company_id),
        "name": webhook.name,
        "url": webhook.url,
        "events": list(webhook.events),
        "filters": dict(webhook.filters),
        "enabled": webhook.enabled,
        "signed": webhook.has_secret,
        "created_at": webhook.created_at.isoformat() if webhook.created_at else None,
        "updated_at": webhook.updated_at.isoformat() if webhook.updated_at else None,
    }
    if secret is not None:
        document["secret"] = secret
    return document


def filters_by_event(body: Mapping[str, object]) -> dict[str, tuple[Filter, ...]] | None:
    """`{"<event>": [filter, ...]}`, each list validated as the CLI's `--filter` is."""
    raw = body.get("filters")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InputError(422, "filters", "must be an object of event name -> array of filters")
    parsed = {}
    for event, filters in raw.items():
        try:
            parsed[event] = parse_filters(filters)
        except InvalidFilter as exc:
            where = exc.location.removeprefix("filters")
            raise InputError(422, "filters", f"{event}{where}: {exc.reason}") from None
    return parsed


def create_webhook(call: Call) -> Answer:
    params.only_fields(call.body, CREATE_FIELDS)
    company = visible_company(call, params.path_id(call, "company_id"))
    url = params.text(call.body, "url", required=True)
    events = params.string_list(call.body, "events", required=True)
    assert url is not None and events is not None
    secret = writes.new_signing_secret() if params.boolean(call.body, "secret") else None
    created = writes.create_webhook(
        call.engine,
        company_id=company.id,
        url=url,
        events=events,
        filters=filters_by_event(call.body) or {},
        secret=secret,
        name=params.text(call.body, "name"),
    )
    return Answer(201, webhook_json(created, secret))


def list_webhooks(call: Call) -> Answer:
    company = visible_company(call, params.path_id(call, "company_id"))
    page = listing.webhooks_page(
        call.engine, limit=params.limit(call), cursor=params.cursor(call), company_id=company.id
    )
    return Answer(
        200, {"items": [webhook_json(w) for w in page.items], "next_cursor": page.next_cursor}
    )


def get_webhook(call: Call) -> Answer:
    return Answer(200, webhook_json(visible_webhook(call, params.path_id(call, "webhook_id"))))


def edit_webhook(call: Call) -> Answer:
    params.only_fields(call.body, EDIT_FIELDS)
    webhook_id = visible_webhook(call, params.path_id(call, "webhook_id")).id
    change = writes.WebhookChange(
        url=params.text(call.body, "url"),
        name=params.text(call.body, "name"),
        clear_name="name" in call.body and call.body["name"] is None,
        events=params.string_list(call.body, "events"),
        filters=filters_by_event(call.body),
        enabled=params.boolean(call.body, "enabled"),
    )
    return Answer(200, webhook_json(writes.edit_webhook(call.engine, webhook_id, change)))


def delete_webhook(call: Call) -> Answer:
    webhook_id = visible_webhook(call, params.path_id(call, "webhook_id")).id
    writes.delete_webhook(call.engine, webhook_id)
    return Answer(200, {"id": str(webhook_id), "deleted": True})


def rotate_secret(call: Call) -> Answer:
    webhook_id = visible_webhook(call, params.path_id(call, "webhook_id")).id
    webhook, secret = writes.rotate_secret(call.engine, webhook_id)
    return Answer(200, webhook_json(webhook, secret))


ROUTES = (
    ApiRoute(
        "POST",
        "/companies/{company_id}/webhooks",
        'Subscribe a URL to events of a company; `"secret": true` makes a signing secret, '
        "shown in this answer only",
        Access.WRITE,
        create_webhook,
        ref(WEBHOOK),
        status=201,
        body={
            "type": "object",
            "properties": {
                "url": _URL,
                "events": _EVENTS,
                "name": _NAME,
                "filters": _FILTERS,
                "secret": {"type": "boolean"},
            },
            "required": ["url", "events"],
            "additionalProperties": False,
        },
        errors=(404, 413, 415, 422),
    ),
    ApiRoute(
        "GET",
        "/companies/{company_id}/webhooks",
        "List a company's webhooks, oldest first (deleted ones are gone)",
        Access.READ,
        list_webhooks,
        page_of(WEBHOOK),
        query=params.PAGE_PARAMS,
        errors=(404, 422),
    ),
    ApiRoute(
        "GET",
        "/webhooks/{webhook_id}",
        "Read a webhook (never its secret)",
        Access.READ,
        get_webhook,
        ref(WEBHOOK),
        errors=(404, 422),
    ),
    ApiRoute(
        "PATCH",
        "/webhooks/{webhook_id}",
        "Change a webhook: url, name (null removes it), events (replaces them), filters "
        "(replaces those of the events named), enabled",
        Access.WRITE,
        edit_webhook,
        ref(WEBHOOK),
        body={
            "type": "object",
            "properties": {
                "url": _URL,
                "name": _NAME,
                "events": _EVENTS,
                "filters": _FILTERS,
                "enabled": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        errors=(404, 413, 415, 422),
    ),
    ApiRoute(
        "DELETE",
        "/webhooks/{webhook_id}",
        "Delete a webhook: no more deliveries; its execution-log rows stay",
        Access.WRITE,
        delete_webhook,
        deleted(),
        errors=(404, 422),
    ),
    ApiRoute(
        "POST",
        "/webhooks/{webhook_id}/rotate-secret",
        "Give a webhook a new signing secret, shown in this answer only",
        Access.WRITE,
        rotate_secret,
        ref(WEBHOOK),
        errors=(404, 422),
    ),
)
