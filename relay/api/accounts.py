"""`/api/v1/users` and `/api/v1/tokens`: the people who use the API and the console, and
their API tokens, managed as `relay users|tokens ...` does (relay/accounts/store.py).

Only an admin of every company manages accounts: a limited admin could otherwise give
itself, or a token, more companies than it has. A password is accepted, stored as an
argon2id hash and never answered; a token's text is answered once, when it is created.
"""

from __future__ import annotations

import uuid

from relay.accounts import store
from relay.api import params
from relay.api.routing import Access, Answer, ApiRoute, Call
from relay.api.schemas import TIMESTAMP, UUID, ref
from relay.errors import InputError
from spool import utc_now

USER = "User"
TOKEN = "ApiToken"
COMPANIES = {
    "type": ["array", "null"],
    "items": UUID,
    "description": "the companies it may see; null: every company",
}
SCHEMAS = {
    USER: {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "role": {"enum": ["admin", "viewer"]},
            "companies": COMPANIES,
            "disabled": {"type": "boolean"},
            "created_at": TIMESTAMP,
        },
        "required": ["name", "role", "companies", "disabled", "created_at"],
    },
    TOKEN: {
        "type": "object",
        "properties": {
            "id": UUID,
            "prefix": {"type": "string"},
            "scope": {"enum": ["read", "admin", "events"]},
            "user": {"type": "string"},
            "companies": COMPANIES,
            "created_at": TIMESTAMP,
            "last_used_at": {"type": ["string", "null"], "format": "date-time"},
            "revoked_at": {"type": ["string", "null"], "format": "date-time"},
            "token": {"type": "string", "description": "in the answer that creates it only"},
        },
        "required": ["id", "prefix", "scope", "user", "companies", "created_at"],
    },
}


def user_json(user: store.UserRow) -> dict[str, object]:
    return {
        "name": user.name,
        "role": user.role.value,
        "companies": _companies(user.companies),
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
    }


def token_json(token: store.TokenRow, text: str | None = None) -> dict[str, object]:
    document: dict[str, object] = {
        "id": str(token.id),
        "prefix": token.prefix,
        "scope": token.scope.value,
        "user": token.user,
        "companies": _companies(token.companies),
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }
    if text is not None:
        document["token"] = text
    return document


def list_users(call: Call) -> Answer:
    return Answer(200, {"items": [user_json(u) for u in store.list_users(call.engine)]})


def add_user(call: Call) -> Answer:
    params.only_fields(call.body, ("name", "password", "role", "companies"))
    name = params.text(call.body, "name", required=True)
    password = params.text(call.body, "password", required=True)
    assert name is not None and password is not None
    added = store.add_user(
        call.engine,
        name,
        password,
        role=params.text(call.body, "role") or "viewer",
        companies_allowed=_company_ids(call),
        now=utc_now(),
    )
    return Answer(201, user_json(added))


def edit_user(call: Call) -> Answer:
    params.only_fields(call.body, ("role", "companies", "password", "disabled"))
    every = "companies" in call.body and call.body["companies"] is None
    edited = store.edit_user(
        call.engine,
        call.path["user_name"],
        now=utc_now(),
        role=params.text(call.body, "role"),
        companies_allowed=_company_ids(call),
        every_company=every,
        password=params.text(call.body, "password"),
        disabled=params.boolean(call.body, "disabled"),
    )
    return Answer(200, user_json(edited))


def list_tokens(call: Call) -> Answer:
    return Answer(200, {"items": [token_json(t) for t in store.list_tokens(call.engine)]})


def create_token(call: Call) -> Answer:
    params.only_fields(call.body, ("user", "scope", "company_id"))
    user = params.text(call.body, "user", required=True)
    assert user is not None
    company = params.text(call.body, "company_id")
    try:
        company_id = uuid.UUID(company) if company is not None else None
    except ValueError:
        raise InputError(422, "company_id", f"is not a valid UUID: {str(company)[:64]!r}") from None
    token, text = store.create_token(
        call.engine,
        user,
        scope=params.text(call.body, "scope") or "read",
        company_id=company_id,
        now=utc_now(),
    )
    return Answer(201, token_json(token, text))


def revoke_token(call: Call) -> Answer:
    token_id = params.path_id(call, "token_id")
    return Answer(200, token_json(store.revoke_token(call.engine, str(token_id), now=utc_now())))


def _company_ids(call: Call) -> list[uuid.UUID] | None:
    raw = params.string_list(call.body, "companies")
    if raw is None:
        return None
    try:
        return [uuid.UUID(one) for one in raw]
    except ValueError:
        raise InputError(422, "companies", "must be an array of company ids") from None


def _companies(companies: frozenset[uuid.UUID] | None) -> list[str] | None:
    return None if companies is None else sorted(str(c) for c in companies)


USER_BODY = {
    "name": {"type": "string"},
    "password": {"type": "string", "minLength": 8, "maxLength": 1024, "writeOnly": True},
    "role": {"enum": ["admin", "viewer"], "description": "default viewer"},
    "companies": COMPANIES,
}
ROUTES = (
    ApiRoute(
        "GET",
        "/users",
        "List users",
        Access.GLOBAL_WRITE,
        list_users,
        {"type": "object", "properties": {"items": {"type": "array", "items": ref(USER)}}},
    ),
    ApiRoute(
        "POST",
        "/users",
        "Add a user (the password is stored as an argon2id hash)",
        Access.GLOBAL_WRITE,
        add_user,
        ref(USER),
        status=201,
        body={
            "type": "object",
            "properties": USER_BODY,
            "required": ["name", "password"],
            "additionalProperties": False,
        },
        errors=(409, 413, 415, 422),
    ),
    ApiRoute(
        "PATCH",
        "/users/{user_name}",
        "Change a user's role, companies or password, or disable it (its tokens stop working)",
        Access.GLOBAL_WRITE,
        edit_user,
        ref(USER),
        body={
            "type": "object",
            "properties": {
                "role": USER_BODY["role"],
                "companies": COMPANIES,
                "password": USER_BODY["password"],
                "disabled": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        errors=(404, 413, 415, 422),
    ),
    ApiRoute(
        "GET",
        "/tokens",
        "List API tokens (never their text)",
        Access.GLOBAL_WRITE,
        list_tokens,
        {"type": "object", "properties": {"items": {"type": "array", "items": ref(TOKEN)}}},
    ),
    ApiRoute(
        "POST",
        "/tokens",
        "Create an API token: its text is in this answer only",
        Access.GLOBAL_WRITE,
        create_token,
        ref(TOKEN),
        status=201,
        body={
            "type": "object",
            "properties": {
                "user": {"type": "string"},
                "scope": {"enum": ["read", "admin", "events"], "description": "default read"},
                "company_id": UUID,
            },
            "required": ["user"],
            "additionalProperties": False,
        },
        errors=(404, 413, 415, 422),
    ),
    ApiRoute(
        "POST",
        "/tokens/{token_id}/revoke",
        "Revoke an API token",
        Access.GLOBAL_WRITE,
        revoke_token,
        ref(TOKEN),
        errors=(404, 409, 422),
    ),
)
