"""Users and API tokens in the database: the changes `relay users|tokens ...` make, and the
lookups the authenticator does. Mistakes are `InputError`s naming the field, so the CLI
prints them as one line and an API could answer them as 4xx."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from relay.accounts.credentials import (
    digest_matches,
    hash_password,
    new_token,
    token_digest,
    token_prefix,
)
from relay.accounts.principal import SCOPES_OF, Principal, Role, Scope, effective_companies
from relay.db.schema import api_tokens, as_utc, companies, users
from relay.errors import InputError

USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
# `last_used_at` is written at most this often per token: a busy token costs one UPDATE a
# minute, not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class UserRow:
    id: uuid.UUID
    name: str
    role: Role
    companies: frozenset[uuid.UUID] | None
    disabled: bool
    created_at: datetime


@dataclass(frozen=True)
class TokenRow:
    id: uuid.UUID
    prefix: str
    scope: Scope
    user: str
    companies: frozenset[uuid.UUID] | None  # what it may see: its company, else its user's
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class Login:
    """What a password login checks: the hash, and who it is if the password matches."""

    password_hash: str
    principal: Principal


# -- users --------------------------------------------------------------------------------------


def add_user(
    engine: Engine,
    name: str,
    password: str,
    *,
    role: str,
    companies_allowed: Sequence[uuid.UUID] | None,
    now: datetime,
) -> UserRow:
    if not USER_NAME.fullmatch(name):
        raise InputError(
            422, "name", "user name must be 1 to 100 letters, digits or . _ @ - characters"
        )
    values = {
        "id": uuid.uuid4(),
        "name": name,
        "password_hash": hash_password(_password(password)),
        "role": _role(role).value,
        "disabled": False,
        "created_at": now,
        "updated_at": now,
    }
    with engine.begin() as conn:
        values["companies"] = _company_list(conn, companies_allowed)
        if _user_row(conn, name) is not None:
            raise InputError(409, "name", f"user {name!r} exists already")
        conn.execute(users.insert().values(values))
        added = _user_row(conn, name)
    assert added is not None
    return added


def edit_user(
    engine: Engine,
    name: str,
    *,
    now: datetime,
    role: str | None = None,
    companies_allowed: Sequence[uuid.UUID] | None = None,
    every_company: bool = False,
    password: str | None = None,
    disabled: bool | None = None,
) -> UserRow:
    """Change a user's role, companies (`every_company` lifts the limit), password, or
    disable it: its tokens stop working within the authenticator's cache time."""
    values: dict[str, object] = {"updated_at": now}
    if role is not None:
        values["role"] = _role(role).value
    if password is not None:
        values["password_hash"] = hash_password(_password(password))
    if disabled is not None:
        values["disabled"] = disabled
    with engine.begin() as conn:
        if every_company:
            values["companies"] = None
        elif companies_allowed is not None:
            values["companies"] = _company_list(conn, companies_allowed)
        changed = conn.execute(users.update().where(users.c.name == name).values(values)).rowcount
        if not changed:
            raise InputError(404, "name", f"unknown user {name!r}")
        edited = _user_row(conn, name)
    assert edited is not None
    return edited


def list_users(engine: Engine) -> list[UserRow]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users).order_by(users.c.name)).all()
    return [_user(row) for row in rows]


def _password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InputError(
            422, "password", f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
        )
    return password


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InputError(422, "role", f"must be admin or viewer, not {role!r}") from None


def _company_list(conn: Connection, wanted: Sequence[uuid.UUID] | None) -> list[str] | None:
    """The company ids a user is limited to, as stored (None: every company)."""
    if wanted is None:
        return None
    _check_companies_exist(conn, wanted)
    return sorted({str(company_id) for company_id in wanted})


def _check_companies_exist(conn: Connection, wanted: Sequence[uuid.UUID]) -> None:
    found = set(
        conn.execute(sa.select(companies.c.id).where(companies.c.id.in_(list(wanted)))).scalars()
    )
    for company_id in wanted:
        if company_id not in found:
            raise InputError(404, "company", f"unknown company {company_id}")


def _user_row(conn: Connection, name: str) -> UserRow | None:
    row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    return None if row is None else _user(row)


def _user(row: sa.Row[tuple[object, ...]]) -> UserRow:
    return UserRow(
        row.id,
        row.name,
        Role(row.role),
        _stored_companies(row.companies),
        row.disabled,
        _created(row.created_at),
    )


def _created(moment: datetime) -> datetime:
    """A NOT NULL timestamp column, in UTC."""
    created = as_utc(moment)
    assert created is not None
    return created


def _stored_companies(stored: list[str] | None) -> frozenset[uuid.UUID] | None:
    return None if stored is None else frozenset(uuid.UUID(text) for text in stored)


# -- tokens -------------------------------------------------------------------------------------


def create_token(
    engine: Engine, user: str, *, scope: str, company_id: uuid.UUID | None, now: datetime
) -> tuple[TokenRow, str]:
    """A new token for `user`; the token text is returned once and only its hash is kept."""
    try:
        wanted = Scope(scope)
    except ValueError:
        raise InputError(422, "scope", f"must be read, admin or events, not {scope!r}") from None
    token = new_token()
    with engine.begin() as conn:
        owner = _user_row(conn, user)
        if owner is None:
            raise InputError(404, "user", f"unknown user {user!r}")
        if wanted not in SCOPES_OF[owner.role]:
            raise InputError(
                422, "scope", f"user {user!r} is a {owner.role}; its tokens cannot have scope admin"
            )
        if company_id is not None:
            _check_companies_exist(conn, [company_id])
            if owner.companies is not None and company_id not in owner.companies:
                raise InputError(
                    422, "company", f"user {user!r} is not allowed company {company_id}"
                )
        token_id = uuid.uuid4()
        conn.execute(
            api_tokens.insert().values(
                id=token_id,
                user_id=owner.id,
                prefix=token_prefix(token),
                token_hash=token_digest(token),
                scope=wanted.value,
                company_id=company_id,
                created_at=now,
            )
        )
        created = _tokens(conn, api_tokens.c.id == token_id)[0]
    return created, token


def list_tokens(engine: Engine) -> list[TokenRow]:
    with engine.connect() as conn:
        return _tokens(conn, sa.true())


def revoke_token(engine: Engine, prefix_or_id: str, *, now: datetime) -> TokenRow:
    """Revoke the token with this prefix or id (revoking twice keeps the first time)."""
    try:
        wanted = api_tokens.c.id == uuid.UUID(prefix_or_id)
    except ValueError:
        wanted = api_tokens.c.prefix == prefix_or_id
    with engine.begin() as conn:
        changed = conn.execute(
            api_tokens.update()
            .where(wanted, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount
        found = _tokens(conn, wanted)
    if not found:
        raise InputError(404, "token", f"no token has the prefix or id {prefix_or_id!r}")
    if not changed:
        raise InputError(409, "token", f"token {found[0].prefix} was revoked already")
    return found[0]


def _tokens(conn: Connection, where: sa.ColumnElement[bool]) -> list[TokenRow]:
    rows = conn.execute(
        sa.select(
            api_tokens, users.c.name.label("user_name"), users.c.companies.label("user_companies")
        )
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(where)
        .order_by(api_tokens.c.created_at, api_tokens.c.id)
    ).all()
    return [
        TokenRow(
            row.id,
            row.prefix,
            Scope(row.scope),
            row.user_name,
            effective_companies(_stored_companies(row.user_companies), row.company_id),
            _created(row.created_at),
            as_utc(row.last_used_at),
            as_utc(row.revoked_at),
        )
        for row in rows
    ]


# -- authentication lookups ---------------------------------------------------------------------


def token_principal(engine: Engine, token: str, *, now: datetime) -> Principal | None:
    """Who `token` is, if it is a live token of an enabled user; notes when it was used
    (at most once per LAST_USED_RESOLUTION)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                api_tokens.c.id,
                api_tokens.c.token_hash,
                api_tokens.c.scope,
                api_tokens.c.company_id,
                api_tokens.c.last_used_at,
                api_tokens.c.revoked_at,
                users.c.name,
                users.c.role,
                users.c.companies,
                users.c.disabled,
            )
            .join(users, users.c.id == api_tokens.c.user_id)
            .where(api_tokens.c.prefix == token_prefix(token))
        ).first()
    if row is None or not digest_matches(row.token_hash, token_digest(token)):
        return None
    if row.revoked_at is not None or row.disabled:
        return None
    last_used = as_utc(row.last_used_at)
    if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
        with engine.begin() as conn:
            conn.execute(
                api_tokens.update().where(api_tokens.c.id == row.id).values(last_used_at=now)
            )
    return Principal(
        user=row.name,
        role=Role(row.role),
        scope=Scope(row.scope),
        companies=effective_companies(_stored_companies(row.companies), row.company_id),
    )


def login_of(engine: Engine, name: str) -> Login | None:
    """The password hash and principal of an enabled user, for a password login."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    if row is None or row.disabled:
        return None
    role = Role(row.role)
    scope = Scope.ADMIN if role is Role.ADMIN else Scope.READ
    return Login(
        row.password_hash, Principal(row.name, role, scope, _stored_companies(row.companies))
    )
