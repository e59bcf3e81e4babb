"""Who may do what, over real HTTP against a real relay: 401 and 403 as JSON, scopes, roles
and company limits (another company's objects are 404, exactly like ids that do not exist),
revocation on a running relay, rate limiting, and API tokens on `POST /v1/events`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.accounts import store
from relay.accounts.credentials import PREFIX_LENGTH
from relay.accounts.rate_limit import DEFAULT_BURST
from spool import utc_now
from tests.relay.conftest import add_company, add_webhook
from tests.relay.test_intake_http import assert_json_error as assert_error
from tests.support import http_calls
from tests.support.api_fixtures import Api, MakeToken
from tests.support.environment import relay_env
from tests.support.pg_cluster import PgCluster
from tests.support.receivers import RunningReceiver
from tests.support.relay_command import run_relay
from tests.support.relay_launcher import InProcessRelay, RelayProcess
from tests.support.waiting import eventually

StartRelay = Callable[..., InProcessRelay]
HOOK = "https://hooks.example.com/calls"
WEBHOOK_BODY = {"url": HOOK, "events": ["call-history-was-created"]}


def writes_of(company: uuid.UUID, webhook: uuid.UUID) -> list[tuple[str, str, object]]:
    """Every write route, with a valid body."""
    return [
        ("POST", "/companies", {"name": "New"}),
        ("PATCH", f"/companies/{company}", {"name": "Renamed"}),
        ("DELETE", f"/companies/{company}", None),
        ("POST", f"/companies/{company}/webhooks", WEBHOOK_BODY),
        ("PATCH", f"/webhooks/{webhook}", {"enabled": False}),
        ("DELETE", f"/webhooks/{webhook}", None),
        ("POST", f"/webhooks/{webhook}/rotate-secret", None),
        ("POST", "/events", {"name": "call-ended"}),
    ]


def reads_of(company: uuid.UUID, webhook: uuid.UUID) -> list[str]:
    return [
        "/companies",
        f"/companies/{company}",
        f"/companies/{company}/webhooks",
        f"/webhooks/{webhook}",
        "/events",
    ]


@pytest.fixture
def acme(pg_engine: Engine) -> tuple[uuid.UUID, uuid.UUID]:
    company = add_company(pg_engine, "Acme")
    return company, add_webhook(pg_engine, company, HOOK)


# -- 401 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "rly_" + "x" * 43],
)
def test_without_a_bearer_token_every_route_is_401(
    relay_url: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    response = Api(relay_url, None).get("/companies", headers=headers)
    assert_error(response, 401, "authorization")
    assert response.json()["error"] == "authorization: missing bearer token"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "token", ["rly_" + "x" * 43, "rly_short", "not-a-relay-token", "rly_" + "x" * 43 + " extra"]
)
def test_an_unknown_token_is_401(relay_url: str, token: str) -> None:
    response = Api(relay_url, token).get("/companies")
    assert_error(response, 401, "authorization")
    assert response.json()["error"] == "authorization: invalid bearer token"


def test_a_token_that_differs_in_one_character_is_401(
    relay_url: str, make_token: MakeToken
) -> None:
    token = make_token()
    last = "A" if token[-1] != "A" else "B"
    assert Api(relay_url, token).get("/companies").status_code == 200
    assert_error(Api(relay_url, token[:-1] + last).get("/companies"), 401, "authorization")


def test_the_openapi_document_needs_no_token(relay_url: str) -> None:
    assert Api(relay_url, None).get("/openapi.json").status_code == 200


def test_a_revoked_token_is_refused_within_seconds_on_a_running_relay(
    relay_url: str, make_token: MakeToken, pg_engine: Engine
) -> None:
    token = make_token()
    api = Api(relay_url, token)
    assert api.get("/companies").status_code == 200
    prefix = store.list_tokens(pg_engine)[-1].prefix

    store.revoke_token(pg_engine, prefix, now=utc_now())
    revoked_at = time.monotonic()

    assert eventually(lambda: api.get("/companies").status_code == 401, timeout=5)
    assert time.monotonic() - revoked_at < 4  # the cache holds a token 2 s
    assert_error(api.get("/companies"), 401, "authorization")


def test_a_disabled_users_tokens_are_refused(
    relay_url: str, make_token: MakeToken, pg_engine: Engine
) -> None:
    api = Api(relay_url, make_token(name="carol"))
    assert api.get("/companies").status_code == 200
    store.edit_user(pg_engine, "carol", now=utc_now(), disabled=True)
    assert eventually(lambda: api.get("/companies").status_code == 401, timeout=5)
    store.edit_user(pg_engine, "carol", now=utc_now(), disabled=False)
    assert eventually(lambda: api.get("/companies").status_code == 200, timeout=5)


# -- rate limiting -----------------------------------------------------------------------------


def test_bad_tokens_are_rate_limited_per_address_even_the_right_one_then(
    relay_url: str, make_token: MakeToken
) -> None:
    good = Api(relay_url, make_token())
    for n in range(DEFAULT_BURST):
        assert_error(Api(relay_url, f"rly_guess{n:040d}").get("/companies"), 401)

    limited = Api(relay_url, "rly_" + "y" * 43).get("/companies")
    refused_good = good.get("/companies")

    for response in (limited, refused_good):
        assert_error(response, 429, "authorization")
        assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "too many failed attempts" in limited.json()["error"]
    assert Api(relay_url, None).get("/openapi.json").status_code == 200  # needs no token


# -- roles and scopes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "scope"), [("viewer", "read"), ("admin", "read"), ("viewer", "events")]
)
def test_tokens_that_cannot_write_get_403_on_every_write(
    relay_url: str,
    make_token: MakeToken,
    acme: tuple[uuid.UUID, uuid.UUID],
    role: str,
    scope: str,
) -> None:
    company, webhook = acme
    api = Api(relay_url, make_token(role=role, scope=scope))
    for method, path, body in writes_of(company, webhook):
        response = api.request(method, path, body)
        assert_error(response, 403, "authorization")
    admin = Api(relay_url, make_token())
    assert admin.get(f"/webhooks/{webhook}").json()["enabled"] is True  # nothing changed


@pytest.mark.parametrize(("role", "scope"), [("viewer", "read"), ("admin", "read")])
def test_read_tokens_read_everything(
    relay_url: str,
    make_token: MakeToken,
    acme: tuple[uuid.UUID, uuid.UUID],
    role: str,
    scope: str,
) -> None:
    api = Api(relay_url, make_token(role=role, scope=scope))
    for path in reads_of(*acme):
        assert api.get(path).status_code == 200, path


def test_an_events_token_cannot_read_the_api(
    relay_url: str, make_token: MakeToken, acme: tuple[uuid.UUID, uuid.UUID]
) -> None:
    api = Api(relay_url, make_token(scope="events"))
    for path in reads_of(*acme):
        response = api.get(path)
        assert_error(response, 403, "authorization")
        assert "scope events cannot read" in response.json()["error"]


# -- company limits ----------------------------------------------------------------------------


@pytest.fixture
def two_companies(pg_engine: Engine) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """(mine, my webhook, theirs, their webhook)."""
    mine, theirs = add_company(pg_engine, "Mine"), add_company(pg_engine, "Theirs")
    return mine, add_webhook(pg_engine, mine, HOOK), theirs, add_webhook(pg_engine, theirs, HOOK)


@pytest.mark.parametrize("limited_by", ["user", "token"])
def test_a_company_limited_token_sees_nothing_of_another_company(
    relay_url: str,
    make_token: MakeToken,
    two_companies: tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID],
    limited_by: str,
) -> None:
    mine, my_hook, theirs, their_hook = two_companies
    token = make_token(companies=[mine]) if limited_by == "user" else make_token(company=mine)
    api = Api(relay_url, token)

    listed = api.get("/companies").json()["items"]
    assert [c["id"] for c in listed] == [str(mine)]
    assert api.get("/companies", params={"q": "Theirs"}).json()["items"] == []
    assert api.get(f"/companies/{mine}/webhooks").json()["items"][0]["id"] == str(my_hook)
    for method, path, body in [
        ("GET", f"/companies/{theirs}", None),
        ("PATCH", f"/companies/{theirs}", {"name": "mine now"}),
        ("DELETE", f"/companies/{theirs}", None),
        ("GET", f"/companies/{theirs}/webhooks", None),
        ("POST", f"/companies/{theirs}/webhooks", WEBHOOK_BODY),
        ("GET", f"/webhooks/{their_hook}", None),
        ("PATCH", f"/webhooks/{their_hook}", {"enabled": False}),
        ("DELETE", f"/webhooks/{their_hook}", None),
        ("POST", f"/webhooks/{their_hook}/rotate-secret", None),
    ]:
        response = api.request(method, path, body)
        nobody = api.request(method, path.replace(str(theirs), str(uuid.uuid4())).replace(
            str(their_hook), str(uuid.uuid4())), body)  # fmt: skip
        assert response.status_code == 404, (method, path)
        assert response.json()["field"] == nobody.json()["field"]  # no different from no such id
    # changes to its own company work; nothing global does
    assert api.patch(f"/companies/{mine}", {"name": "Mine 2"}).status_code == 200
    assert api.patch(f"/webhooks/{my_hook}", {"enabled": False}).status_code == 200
    assert_error(api.post("/companies", {"name": "New"}), 403, "authorization")
    assert_error(api.post("/events", {"name": "call-ended"}), 403, "authorization")
    admin = Api(relay_url, make_token())
    assert admin.get(f"/companies/{theirs}").json()["name"] == "Theirs"
    assert admin.get(f"/webhooks/{their_hook}").json()["enabled"] is True


def test_a_token_of_a_company_its_user_lost_sees_nothing(
    relay_url: str,
    make_token: MakeToken,
    pg_engine: Engine,
    two_companies: tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID],
) -> None:
    mine, _hook, theirs, _their_hook = two_companies
    api = Api(relay_url, make_token(name="dave", companies=[mine, theirs], company=theirs))
    assert [c["id"] for c in api.get("/companies").json()["items"]] == [str(theirs)]
    store.edit_user(pg_engine, "dave", now=utc_now(), companies_allowed=[mine])
    assert eventually(lambda: api.get("/companies").json()["items"] == [], timeout=5)


# -- API tokens on POST /v1/events --------------------------------------------------------------


def test_an_events_token_of_a_company_posts_only_that_companys_events(
    start_relay: StartRelay, make_token: MakeToken, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    mine, theirs = add_company(pg_engine, "Mine"), add_company(pg_engine, "Theirs")
    add_webhook(pg_engine, mine, f"{receiver.url}/ok/mine")
    add_webhook(pg_engine, theirs, f"{receiver.url}/ok/theirs")
    relay = start_relay(intake_token="the-shared-intake-token")
    token = make_token(role="viewer", scope="events", company=mine)

    accepted = relay.post(mine, token=token)
    refused = relay.post(theirs, token=token)

    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["deliveries"] == 1
    assert_error(refused, 403, "company_id")
    assert str(theirs) in refused.json()["error"]
    assert relay.post(theirs, token="the-shared-intake-token").status_code == 202  # as before
    assert eventually(lambda: len(receiver.receiver.on("/ok/")) == 2)
    assert len(receiver.receiver.on("/ok/theirs")) == 1


def test_api_tokens_on_intake_without_an_intake_token(
    start_relay: StartRelay, make_token: MakeToken, pg_engine: Engine
) -> None:
    company = add_company(pg_engine)
    relay = start_relay()  # no RELAY_INTAKE_TOKEN: loopback, open as before

    assert relay.post(company).status_code == 202
    assert relay.post(company, token="anything").status_code == 202
    assert relay.post(company, token=make_token(scope="admin")).status_code == 202
    assert relay.post(company, token=make_token(scope="events")).status_code == 202
    read_only = relay.post(company, token=make_token(scope="read"))
    assert_error(read_only, 403, "authorization")
    assert "scope read cannot post events" in read_only.json()["error"]
    assert_error(relay.post(company, token="rly_" + "z" * 43), 401, "authorization")


def test_a_revoked_events_token_is_refused_by_intake_within_seconds(
    start_relay: StartRelay, make_token: MakeToken, pg_engine: Engine
) -> None:
    company = add_company(pg_engine)
    relay = start_relay(intake_token="the-shared-intake-token")
    token = make_token(scope="events", company=company)
    assert relay.post(company, token=token).status_code == 202
    store.revoke_token(pg_engine, store.list_tokens(pg_engine)[-1].prefix, now=utc_now())
    assert eventually(lambda: relay.post(company, token=token).status_code == 401, timeout=5)


# -- secrets in logs ---------------------------------------------------------------------------


def test_a_serving_relay_never_logs_passwords_or_tokens(
    pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    env = relay_env(
        database_url=pg_url,
        spool_path=tmp_path / "spool" / "spool.db",
        intake_token="intake-token",
        allow_private_destinations=True,
    )
    with pg_engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE users CASCADE"))
    company = add_company(pg_engine)
    password = f"pw-{uuid.uuid4().hex}"
    added = run_relay(env, "-v", "users", "add", "erin", "--role", "admin", stdin=password)
    created = run_relay(env, "-v", "tokens", "create", "--user", "erin", "--scope", "admin")
    assert added.returncode == 0 and created.returncode == 0, added.stderr + created.stderr
    token = created.stdout.split()[-1]
    wrong = "rly_" + uuid.uuid4().hex + uuid.uuid4().hex
    relay = RelayProcess(env, tmp_path / "relay.log").start()
    try:
        api = Api(relay.url, token)
        assert api.get("/companies").status_code == 200
        assert api.post("/companies", {"name": "Acme"}).status_code == 201
        assert api.get("/companies", params={"cursor": token}).status_code == 422
        assert relay_post(relay.url, company, token).status_code == 202
        for _ in range(DEFAULT_BURST + 1):
            api.as_token(wrong).get("/companies")
        assert api.as_token(password).get("/companies").status_code == 429
    finally:
        relay.stop_cleanly()
    logged = relay.log_text() + added.stderr + created.stderr
    assert "relay serving" in logged
    for value in (password, token, token[PREFIX_LENGTH:], wrong):
        assert value not in logged, "a secret leaked into the relay's logs"
    assert password not in added.stdout + created.stdout


def relay_post(url: str, company: uuid.UUID, token: str) -> httpx.Response:
    body = {"company_id": str(company), "event": "call-history-was-created", "data": {}}
    return http_calls.post(
        f"{url}/v1/events", json=body, headers={"authorization": f"Bearer {token}"}, timeout=10
    )


# -- a database outage ---------------------------------------------------------------------------


def test_through_a_postgresql_outage_known_tokens_keep_intake_open_and_the_api_says_503(
    start_relay: StartRelay, make_token: MakeToken, pg_engine: Engine, pg_cluster: PgCluster
) -> None:
    company = add_company(pg_engine)
    relay = start_relay(intake_token="the-shared-intake-token", db_timeout_seconds=2)
    known = make_token(scope="events", company=company)
    admin = Api(relay.url, make_token())
    never_used = make_token(scope="events", company=company)
    assert relay.post(company, token=known).status_code == 202
    assert admin.get("/companies").status_code == 200

    pg_cluster.stop()
    try:
        answers = []
        started = time.monotonic()
        for _ in range(2000):  # bounded; for 3 s, past the 2 s a token's answer stays fresh
            answers.append(relay.post(company, token=known))
            if time.monotonic() - started > 3:
                break
        unchecked = relay.post(company, token=never_used)
        api_down = admin.get("/companies")
    finally:
        pg_cluster.start()

    assert [a.status_code for a in answers] == [202] * len(answers)
    assert max(a.elapsed.total_seconds() for a in answers) < 1  # nothing waited for the database
    assert_error(unchecked, 503, "authorization")
    assert int(unchecked.headers["retry-after"]) > 0
    assert api_down.status_code == 503
    assert api_down.json()["error"] == "the database is unavailable; retry later"
    assert int(api_down.headers["retry-after"]) > 0
    assert eventually(lambda: admin.get("/companies").status_code == 200, timeout=15)
    assert relay.post(company, token=never_used).status_code == 202
