"""`/api/v1/companies`: add, list and search, read, rename or disable, delete companies."""

from __future__ import annotations

from relay.api import params
from relay.api.routing import Access, Answer, ApiRoute, Call, Param
from relay.api.schemas import TIMESTAMP, UUID, deleted, page_of, ref
from relay.api.visibility import visible_company
from relay.registry import listing, writes
from relay.registry.listing import CLUSTERS, COMPANY_STATUSES, CompanyRow

COMPANY = "Company"
PLATFORM = "PlatformConnection"
SCHEMAS = {
    COMPANY: {
        "type": "object",
        "properties": {
            "id": UUID,
            "name": {"type": "string"},
            "status": {"enum": list(COMPANY_STATUSES)},
            "created_at": TIMESTAMP,
            "platform": {
                "description": "the platform connection (the token is never shown); null "
                "without one",
                "oneOf": [{"type": "null"}, ref(PLATFORM)],
            },
        },
        "required": ["id", "name", "status", "created_at", "platform"],
    },
    PLATFORM: {
        "type": "object",
        "properties": {
            "cluster": {"enum": list(CLUSTERS)},
            "stream": {
                "description": "what the relay holding the stream last said; null until one "
                "has tried to open it",
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {
                            "state": {
                                "enum": ["connecting", "connected", "refused", "disconnected"]
                            },
                            "detail": {"type": ["string", "null"]},
                            "holder": {"type": ["string", "null"]},
                            "since": TIMESTAMP,
                        },
                        "required": ["state", "detail", "holder", "since"],
                    },
                ],
            },
        },
        "required": ["cluster", "stream"],
    },
}
NAME = {"type": "string", "minLength": 1, "maxLength": 255}
STATUS = {"enum": list(COMPANY_STATUSES), "description": "disabled: intake answers 404 for it"}
TOKEN = {
    "type": "string",
    "minLength": 1,
    "maxLength": writes.MAX_TOKEN_LENGTH,
    "description": "the company's 3C Plus token: the relay receives its events over socket.io "
    "(write-only)",
}
CLUSTER = {"enum": list(CLUSTERS), "description": "the platform cluster (default cluster1)"}


def company_json(company: CompanyRow) -> dict[str, object]:
    return {
        "id": str(company.id),
        "name": company.name,
        "status": company.status,
        "created_at": company.created_at.isoformat() if company.created_at else None,
        "platform": _platform_json(company),
    }


def _platform_json(company: CompanyRow) -> dict[str, object] | None:
    if not company.platform_token_set:
        return None
    stream = company.stream
    return {
        "cluster": company.cluster,
        "stream": None
        if stream is None
        else {
            "state": stream.state,
            "detail": stream.detail,
            "holder": stream.holder,
            "since": stream.since.isoformat() if stream.since else None,
        },
    }


def create_company(call: Call) -> Answer:
    params.only_fields(call.body, ("name", "platform_token", "cluster"))
    name = params.text(call.body, "name", required=True)
    assert name is not None
    added = writes.add_company(
        call.engine,
        name,
        platform_token=params.text(call.body, "platform_token"),
        cluster=params.text(call.body, "cluster"),
    )
    return Answer(201, company_json(added))


def list_companies(call: Call) -> Answer:
    page = listing.companies_page(
        call.engine,
        limit=params.limit(call),
        cursor=params.cursor(call),
        visible=call.caller.companies,
        name=call.query.get("name"),
        contains=call.query.get("q"),
        status=params.query_choice(call, "status", COMPANY_STATUSES),
    )
    return Answer(
        200, {"items": [company_json(c) for c in page.items], "next_cursor": page.next_cursor}
    )


def get_company(call: Call) -> Answer:
    return Answer(200, company_json(visible_company(call, params.path_id(call, "company_id"))))


def edit_company(call: Call) -> Answer:
    params.only_fields(call.body, ("name", "status", "platform_token", "cluster"))
    company_id = visible_company(call, params.path_id(call, "company_id")).id
    changed = writes.edit_company(
        call.engine,
        company_id,
        name=params.text(call.body, "name"),
        status=params.text(call.body, "status"),
        platform=_platform_change(call),
    )
    return Answer(200, company_json(changed))


def _platform_change(call: Call) -> writes.PlatformChange | None:
    """`platform_token` sets the token, `null` removes the connection; `cluster` moves it."""
    body = call.body
    if "platform_token" not in body and "cluster" not in body:
        return None
    remove = "platform_token" in body and body["platform_token"] is None
    return writes.PlatformChange(
        params.text(body, "platform_token"), params.text(body, "cluster"), remove
    )


def delete_company(call: Call) -> Answer:
    company_id = visible_company(call, params.path_id(call, "company_id")).id
    writes.delete_company(call.engine, company_id)
    return Answer(200, {"id": str(company_id), "deleted": True})


ROUTES = (
    ApiRoute(
        "POST",
        "/companies",
        "Add a company",
        Access.GLOBAL_WRITE,
        create_company,
        ref(COMPANY),
        status=201,
        body={
            "type": "object",
            "properties": {"name": NAME, "platform_token": TOKEN, "cluster": CLUSTER},
            "required": ["name"],
            "additionalProperties": False,
        },
        errors=(413, 415, 422),
    ),
    ApiRoute(
        "GET",
        "/companies",
        "List companies (those the caller may see), oldest first",
        Access.READ,
        list_companies,
        page_of(COMPANY),
        query=(
            Param("q", "part of the name, any case"),
            Param("name", "the exact name"),
            Param("status", "only companies with this status", STATUS),
            *params.PAGE_PARAMS,
        ),
        errors=(422,),
    ),
    ApiRoute(
        "GET",
        "/companies/{company_id}",
        "Read a company",
        Access.READ,
        get_company,
        ref(COMPANY),
        errors=(404, 422),
    ),
    ApiRoute(
        "PATCH",
        "/companies/{company_id}",
        "Rename, disable or enable a company, or change its platform connection",
        Access.WRITE,
        edit_company,
        ref(COMPANY),
        body={
            "type": "object",
            "properties": {
                "name": NAME,
                "status": STATUS,
                "platform_token": {
                    "oneOf": [TOKEN, {"type": "null"}],
                    "description": "a new token; null removes the platform connection",
                },
                "cluster": CLUSTER,
            },
            "additionalProperties": False,
        },
        errors=(404, 413, 415, 422),
    ),
    ApiRoute(
        "DELETE",
        "/companies/{company_id}",
        "Delete a company and its webhooks (their execution-log rows stay)",
        Access.WRITE,
        delete_company,
        deleted(),
        errors=(404, 422),
    ),
)
