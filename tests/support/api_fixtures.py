"""Fixtures of the management API's tests: real users and tokens in the suite's PostgreSQL
(made with the same functions `relay users|tokens` uses), and a client for a real relay
serving /api/v1 on 127.0.0.1."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy import Engine

from relay.accounts import credentials, store
from relay.db.schema import events, webhook_events
from relay.registry import writes
from spool import utc_now
from tests.support import http_calls

PASSWORD = "correct horse battery staple"
_names = itertools.count(1)


@dataclass
class Api:
    """httpx against a running relay's /api/v1 with one token."""

    base: str
    token: str | None

    def request(self, method: str, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers.setdefault("authorization", f"Bearer {self.token}")
        return http_calls.request(
            method,
            f"{self.base}/api/v1{path}",
            json=json,
            headers=headers,
            timeout=10,
            **kwargs,
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def as_token(self, token: str | None) -> Api:
        return Api(self.base, token)


MakeToken = Callable[..., str]


CHEAP_ARGON2 = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
"""argon2id at its lowest cost, for the users these fixtures make: the library's defaults
(64 MiB, 3 passes, 4 lanes) take about 80 ms per hash and per sign-in, over hundreds of
users. A hash names its own parameters, so every relay verifies these as any other; the
production parameters have a test of their own (tests/relay/test_accounts.py)."""


@pytest.fixture
def make_token(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeToken]:
    """`make_token(role="admin", scope="admin", companies=None, company=None)`: a new user
    with that role (limited to `companies` when given) and a token of it."""
    monkeypatch.setattr(credentials, "_hasher", CHEAP_ARGON2)
    with pg_engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE users CASCADE"))

    def make(
        *,
        role: str = "admin",
        scope: str = "admin",
        companies: Sequence[uuid.UUID] | None = None,
        company: uuid.UUID | None = None,
        name: str | None = None,
    ) -> str:
        user = name or f"user-{next(_names)}"
        if name is None or user not in {u.name for u in store.list_users(pg_engine)}:
            store.add_user(
                pg_engine, user, PASSWORD, role=role, companies_allowed=companies, now=utc_now()
            )
        _row, token = store.create_token(
            pg_engine, user, scope=scope, company_id=company, now=utc_now()
        )
        return token

    yield make


@pytest.fixture
def relay_url(start_relay: Callable[..., Any]) -> str:
    """A real relay (uvicorn on 127.0.0.1) on the suite's database."""
    return str(start_relay().url)


@pytest.fixture
def admin_api(relay_url: str, make_token: MakeToken) -> Api:
    """The API as an unlimited admin."""
    return Api(relay_url, make_token())


@pytest.fixture
def event_catalog(pg_engine: Engine) -> Iterator[None]:
    """Event types a test adds are removed after it (the catalog outlives the other tables'
    truncation, and other tests list it)."""
    with pg_engine.connect() as conn:
        before = set(conn.execute(sa.select(events.c.id)).scalars())
    yield
    with pg_engine.begin() as conn:
        added = sa.select(events.c.id).where(events.c.id.not_in(before))
        conn.execute(sa.delete(webhook_events).where(webhook_events.c.event_id.in_(added)))
        conn.execute(sa.delete(events).where(events.c.id.not_in(before)))


@pytest.fixture
def second_event(pg_engine: Engine, event_catalog: None) -> str:
    """A second event type beside call-history-was-created."""
    return writes.add_event_type(pg_engine, "call-ended", "Call ended").name
