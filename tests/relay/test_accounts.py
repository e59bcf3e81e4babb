"""Users, tokens and the authenticator on real databases (the same tests on PostgreSQL and
on the embedded SQLite), and the timing rules (token cache, last use, rate limits) under
freezegun."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import Engine

from relay.accounts import store
from relay.accounts.authenticator import Authenticator, CredentialsUnchecked
from relay.accounts.credentials import PREFIX_LENGTH, password_matches
from relay.accounts.principal import Principal, Role, Scope, effective_companies
from relay.accounts.rate_limit import FailureLimiter, RateLimited
from relay.db import migrations
from relay.db.engine import make_engine
from relay.db.schema import api_tokens, users
from relay.errors import InputError
from relay.registry import writes
from tests.relay.test_dispatcher import REAL_TIME_MODULES

START = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
CLIENT = "192.0.2.10"


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database without users: the suite's PostgreSQL, or a fresh SQLite file."""
    if request.param == "postgresql":
        pg: Engine = request.getfixturevalue("pg_engine")
        with pg.begin() as conn:
            conn.execute(sa.text("TRUNCATE users CASCADE"))
        yield pg
        return
    url = f"sqlite:///{tmp_path / 'db' / 'relay.db'}"
    migrations.upgrade(url)
    lite = make_engine(url)
    yield lite
    lite.dispose()


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(START, ignore=REAL_TIME_MODULES) as clock:
        yield clock


def add_user(
    engine: Engine,
    name: str = "alice",
    role: str = "admin",
    companies: list[uuid.UUID] | None = None,
) -> store.UserRow:
    return store.add_user(engine, name, PASSWORD, role=role, companies_allowed=companies, now=START)


def token_for(engine: Engine, user: str = "alice", **options: object) -> str:
    options.setdefault("scope", "admin")
    options.setdefault("company_id", None)
    return store.create_token(engine, user, now=START, **options)[1]  # type: ignore[arg-type]


def refused(error: pytest.ExceptionInfo[InputError], status: int, field: str) -> None:
    assert (error.value.status, error.value.field) == (status, field), error.value


# -- users --------------------------------------------------------------------------------------


def test_a_password_is_stored_as_an_argon2id_hash_only(engine: Engine) -> None:
    add_user(engine)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()
    # argon2-cffi's defaults: RFC 9106's second recommended profile (64 MiB, 3 passes, 4 lanes)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in stored
    assert password_matches(stored, PASSWORD)
    assert not password_matches(stored, PASSWORD + "!")
    assert not password_matches("not a hash", PASSWORD)


@pytest.mark.parametrize(
    ("name", "password", "role", "status", "field"),
    [
        ("", PASSWORD, "admin", 422, "name"),
        ("has space", PASSWORD, "admin", 422, "name"),
        ("x" * 101, PASSWORD, "admin", 422, "name"),
        ("bob", "short", "admin", 422, "password"),
        ("bob", "x" * 1025, "admin", 422, "password"),
        ("bob", PASSWORD, "owner", 422, "role"),
        ("alice", PASSWORD, "viewer", 409, "name"),
    ],
)
def test_bad_users_are_refused_naming_the_field(
    engine: Engine, name: str, password: str, role: str, status: int, field: str
) -> None:
    add_user(engine)
    with pytest.raises(InputError) as error:
        store.add_user(engine, name, password, role=role, companies_allowed=None, now=START)
    refused(error, status, field)
    assert [u.name for u in store.list_users(engine)] == ["alice"]


def test_a_user_limited_to_companies_that_exist(engine: Engine) -> None:
    acme = writes.add_company(engine, "Acme").id
    with pytest.raises(InputError) as error:
        add_user(engine, "bob", companies=[acme, uuid.uuid4()])
    refused(error, 404, "company")

    bob = add_user(engine, "bob", "viewer", [acme])

    assert (bob.role, bob.companies, bob.disabled) == (Role.VIEWER, frozenset({acme}), False)


def test_edit_user_changes_role_companies_password_and_disabled(engine: Engine) -> None:
    acme = writes.add_company(engine, "Acme").id
    add_user(engine)
    later = START + timedelta(hours=1)

    limited = store.edit_user(engine, "alice", now=later, role="viewer", companies_allowed=[acme])
    assert (limited.role, limited.companies) == (Role.VIEWER, frozenset({acme}))
    unlimited = store.edit_user(engine, "alice", now=later, every_company=True)
    assert unlimited.companies is None
    store.edit_user(engine, "alice", now=later, password="a new password")
    assert store.login_of(engine, "alice") is not None
    assert password_matches(store.login_of(engine, "alice").password_hash, "a new password")  # type: ignore[union-attr]
    assert store.edit_user(engine, "alice", now=later, disabled=True).disabled
    assert store.login_of(engine, "alice") is None
    with pytest.raises(InputError) as error:
        store.edit_user(engine, "nobody", now=later, disabled=True)
    refused(error, 404, "name")


# -- tokens -------------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_stored_as_a_hash(engine: Engine) -> None:
    add_user(engine)
    row, token = store.create_token(engine, "alice", scope="read", company_id=None, now=START)

    assert token.startswith("rly_") and len(token) == 47
    assert row.prefix == token[:PREFIX_LENGTH]
    assert (row.scope, row.user, row.companies, row.last_used_at) == (
        Scope.READ,
        "alice",
        None,
        None,
    )
    with engine.connect() as conn:
        stored = conn.execute(sa.select(api_tokens)).one()
    assert token not in str(tuple(stored))
    assert len(stored.token_hash) == 64
    assert token[PREFIX_LENGTH:] not in str(store.list_tokens(engine))


def test_every_token_is_new(engine: Engine) -> None:
    add_user(engine)
    tokens = {token_for(engine) for _ in range(5)}
    assert len(tokens) == 5
    assert len({t.prefix for t in store.list_tokens(engine)}) == 5


def test_bad_token_requests_are_refused_naming_the_field(engine: Engine) -> None:
    acme, beta = writes.add_company(engine, "Acme").id, writes.add_company(engine, "Beta").id
    add_user(engine)
    add_user(engine, "viewer", "viewer", [acme])
    cases: list[tuple[str, str, uuid.UUID | None, int, str]] = [
        ("nobody", "read", None, 404, "user"),
        ("alice", "write", None, 422, "scope"),
        ("viewer", "admin", None, 422, "scope"),
        ("viewer", "read", beta, 422, "company"),
        ("alice", "read", uuid.uuid4(), 404, "company"),
    ]
    for user, scope, company, status, field in cases:
        with pytest.raises(InputError) as error:
            store.create_token(engine, user, scope=scope, company_id=company, now=START)
        refused(error, status, field)
    assert store.list_tokens(engine) == []
    viewer_events = store.create_token(engine, "viewer", scope="events", company_id=acme, now=START)
    assert viewer_events[0].companies == frozenset({acme})


def test_revoke_by_prefix_or_id(engine: Engine) -> None:
    add_user(engine)
    first, second = token_for(engine), token_for(engine)
    by_prefix = store.revoke_token(engine, first[:PREFIX_LENGTH], now=START)
    second_row = next(t for t in store.list_tokens(engine) if t.prefix == second[:PREFIX_LENGTH])
    by_id = store.revoke_token(engine, str(second_row.id), now=START)

    assert by_prefix.revoked_at == START and by_id.revoked_at == START
    assert store.token_principal(engine, first, now=START) is None
    assert store.token_principal(engine, second, now=START) is None
    with pytest.raises(InputError) as again:
        store.revoke_token(engine, first[:PREFIX_LENGTH], now=START)
    refused(again, 409, "token")
    with pytest.raises(InputError) as unknown:
        store.revoke_token(engine, "rly_unknown", now=START)
    refused(unknown, 404, "token")


def test_a_token_acts_for_its_user_narrowed_to_its_company(engine: Engine) -> None:
    acme, beta = writes.add_company(engine, "Acme").id, writes.add_company(engine, "Beta").id
    add_user(engine, "limited", "viewer", [acme, beta])
    everything = token_for(engine, "limited", scope="read")
    only_acme = token_for(engine, "limited", scope="read", company_id=acme)

    assert store.token_principal(engine, everything, now=START) == Principal(
        "limited", Role.VIEWER, Scope.READ, frozenset({acme, beta})
    )
    narrowed = store.token_principal(engine, only_acme, now=START)
    assert narrowed is not None and narrowed.companies == frozenset({acme})
    assert narrowed.sees(acme) and not narrowed.sees(beta)
    assert not narrowed.can_write() and narrowed.can_read()


def test_unknown_and_tampered_tokens_are_nobody(engine: Engine) -> None:
    add_user(engine)
    token = token_for(engine)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")  # same prefix, other hash
    assert store.token_principal(engine, tampered, now=START) is None
    assert store.token_principal(engine, "rly_" + "x" * 43, now=START) is None


def test_last_use_is_written_at_most_once_a_minute(engine: Engine) -> None:
    add_user(engine)
    token = token_for(engine)

    def last_used() -> datetime | None:
        return store.list_tokens(engine)[0].last_used_at

    store.token_principal(engine, token, now=START)
    assert last_used() == START
    store.token_principal(engine, token, now=START + timedelta(seconds=59))
    assert last_used() == START
    store.token_principal(engine, token, now=START + timedelta(seconds=61))
    assert last_used() == START + timedelta(seconds=61)


def test_effective_companies() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert effective_companies(None, None) is None
    assert effective_companies(None, a) == {a}
    assert effective_companies(frozenset({a, b}), None) == {a, b}
    assert effective_companies(frozenset({a, b}), a) == {a}
    assert effective_companies(frozenset({b}), a) == frozenset()


@pytest.mark.parametrize(
    ("role", "scope", "reads", "writes_", "posts"),
    [
        (Role.ADMIN, Scope.ADMIN, True, True, True),
        (Role.ADMIN, Scope.READ, True, False, False),
        (Role.ADMIN, Scope.EVENTS, False, False, True),
        (Role.VIEWER, Scope.READ, True, False, False),
        (Role.VIEWER, Scope.EVENTS, False, False, True),
        (Role.VIEWER, Scope.ADMIN, True, False, False),  # a user demoted after the token
    ],
)
def test_what_a_principal_may_do(
    role: Role, scope: Scope, reads: bool, writes_: bool, posts: bool
) -> None:
    principal = Principal("p", role, scope, None)
    assert (principal.can_read(), principal.can_write(), principal.can_post_events()) == (
        reads,
        writes_,
        posts,
    )


# -- the rate limiter ---------------------------------------------------------------------------


def test_failures_empty_the_bucket_and_time_refills_it(frozen: FrozenDateTimeFactory) -> None:
    limiter = FailureLimiter(burst=3, per_second=0.5)
    for _ in range(3):
        limiter.check(CLIENT)  # checking costs nothing
        limiter.fail(CLIENT)
    with pytest.raises(RateLimited) as limited:
        limiter.check(CLIENT)
    assert (limited.value.status, limited.value.retry_after) == (429, 2)
    limiter.check("198.51.100.7")  # another address is not affected

    frozen.tick(timedelta(seconds=1.9))
    with pytest.raises(RateLimited):
        limiter.check(CLIENT)
    frozen.tick(timedelta(seconds=0.1))
    limiter.check(CLIENT)  # one try back after 2 s
    limiter.fail(CLIENT)
    with pytest.raises(RateLimited):
        limiter.check(CLIENT)
    frozen.tick(timedelta(hours=1))
    for _ in range(3):  # refilled to the burst, not beyond
        limiter.check(CLIENT)
        limiter.fail(CLIENT)
    with pytest.raises(RateLimited):
        limiter.check(CLIENT)


def test_the_limiter_remembers_a_bounded_number_of_addresses(
    frozen: FrozenDateTimeFactory,
) -> None:
    limiter = FailureLimiter(burst=1, per_second=0.001, max_addresses=3)
    for n in range(5):
        limiter.fail(f"10.0.0.{n}")
    limiter.check("10.0.0.0")  # forgotten: the oldest two went first
    limiter.check("10.0.0.1")
    with pytest.raises(RateLimited):
        limiter.check("10.0.0.4")


# -- the authenticator --------------------------------------------------------------------------


def authenticate(authenticator: Authenticator, header: str | None) -> Principal:
    return asyncio.run(authenticator.authenticate(header, CLIENT))


def test_a_known_token_is_asked_again_in_the_background_once_its_answer_is_2_s_old(
    engine: Engine, frozen: FrozenDateTimeFactory
) -> None:
    """So revocation takes 2 s and a bit, and no request ever waits for the database for a
    token it has seen."""
    add_user(engine)
    token = token_for(engine)
    header = f"Bearer {token}"

    async def scenario() -> None:
        authenticator = Authenticator(engine)
        assert (await authenticator.authenticate(header, CLIENT)).user == "alice"
        store.revoke_token(engine, token[:PREFIX_LENGTH], now=START)
        frozen.tick(timedelta(seconds=1.9))
        assert (await authenticator.authenticate(f"bearer  {token} ", CLIENT)).user == "alice"
        frozen.tick(timedelta(seconds=0.2))
        assert (await authenticator.authenticate(header, CLIENT)).user == "alice"  # the old one
        for _ in range(500):  # bounded: the background check takes milliseconds
            try:
                await authenticator.authenticate(header, CLIENT)
            except InputError as error:
                assert (error.status, error.field) == (401, "authorization")
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the revoked token was still accepted")

    asyncio.run(scenario())


def test_through_a_database_outage_a_known_token_keeps_its_last_answer(
    frozen: FrozenDateTimeFactory, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'relay.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    add_user(engine)
    known, unknown = token_for(engine), token_for(engine)
    broken = make_engine(f"sqlite:///{tmp_path / 'gone' / 'nothing.db'}")  # no tables: fails

    async def scenario() -> None:
        authenticator = Authenticator(engine)
        assert (await authenticator.authenticate(f"Bearer {known}", CLIENT)).user == "alice"
        authenticator.engine = broken  # the database is gone from now on
        for _ in range(3):
            frozen.tick(timedelta(seconds=3))
            assert (await authenticator.authenticate(f"Bearer {known}", CLIENT)).user == "alice"
            await asyncio.sleep(0.05)
        with pytest.raises(CredentialsUnchecked) as error:
            await authenticator.authenticate(f"Bearer {unknown}", CLIENT)
        assert (error.value.status, error.value.retry_after) == (503, 5)

    asyncio.run(scenario())
    engine.dispose()
    broken.dispose()


def test_bad_tokens_count_against_the_address(
    engine: Engine, frozen: FrozenDateTimeFactory
) -> None:
    add_user(engine)
    good = token_for(engine)
    authenticator = Authenticator(engine, limiter=FailureLimiter(burst=2, per_second=0.1))
    for header in ("Bearer rly_" + "x" * 43, "Bearer not-even-a-relay-token"):
        with pytest.raises(InputError) as error:
            authenticate(authenticator, header)
        refused(error, 401, "authorization")
    with pytest.raises(RateLimited):
        authenticate(authenticator, f"Bearer {good}")
    with pytest.raises(InputError) as missing:  # no header is not a guess: 401, not counted
        asyncio.run(authenticator.authenticate(None, "203.0.113.1"))
    refused(missing, 401, "authorization")
    frozen.tick(timedelta(seconds=10))
    assert authenticate(authenticator, f"Bearer {good}").user == "alice"


def test_password_logins(engine: Engine, frozen: FrozenDateTimeFactory) -> None:
    acme = writes.add_company(engine, "Acme").id
    add_user(engine, "viewer", "viewer", [acme])
    authenticator = Authenticator(engine, limiter=FailureLimiter(burst=3, per_second=0.1))

    principal = authenticator.login("viewer", PASSWORD, CLIENT)

    assert principal == Principal("viewer", Role.VIEWER, Scope.READ, frozenset({acme}))
    for name, password in (("viewer", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(InputError) as error:
            authenticator.login(name, password, CLIENT)
        refused(error, 401, "authorization")
        assert error.value.message == "wrong user name or password"  # the same for both
    store.edit_user(engine, "viewer", now=START, disabled=True)
    with pytest.raises(InputError):
        authenticator.login("viewer", PASSWORD, CLIENT)
    with pytest.raises(RateLimited):  # three failures: the right password waits too
        authenticator.login("viewer", PASSWORD, CLIENT)
