"""`/api/v1/companies` over real HTTP: a real relay on 127.0.0.1, real PostgreSQL, real
tokens; every happy path and 4xx path, and what a running relay's intake makes of it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.accounts import store
from relay.db import migrations
from relay.db.engine import make_engine
from relay.db.schema import companies, platform_streams, webhooks
from relay.runtime.service import RelayService
from relay.settings import RelaySettings
from spool import utc_now
from tests.relay.conftest import add_company, add_webhook, platform_columns
from tests.relay.test_intake_http import assert_json_error as assert_error
from tests.support.api_fixtures import PASSWORD, Api, MakeToken
from tests.support.receivers import RunningReceiver, ThreadedServer
from tests.support.relay_launcher import InProcessRelay
from tests.support.waiting import eventually

StartRelay = Callable[..., InProcessRelay]


def test_post_creates_a_company_and_answers_201(admin_api: Api, pg_engine: Engine) -> None:
    response = admin_api.post("/companies", {"name": "  Acme Cobrancas "})

    assert response.status_code == 201, response.text
    answer = response.json()
    assert set(answer) == {"id", "name", "status", "created_at", "platform"}
    assert (answer["name"], answer["status"], answer["platform"]) == (
        "Acme Cobrancas",
        "active",
        None,
    )
    with pg_engine.connect() as conn:
        row = conn.execute(sa.select(companies).where(companies.c.id == answer["id"])).one()
    assert row.name == "Acme Cobrancas"
    assert admin_api.get(f"/companies/{answer['id']}").json() == answer


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": 5}, "name"),
        ({"name": "Acme", "colour": "red"}, "colour"),
        ([1, 2], "body"),
    ],
)
def test_post_with_a_bad_name_is_422_naming_the_field(
    admin_api: Api, pg_engine: Engine, body: object, field: str
) -> None:
    assert_error(admin_api.post("/companies", body), 422, field)
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(companies)).scalar() == 0


def test_bodies_that_are_not_storable_json_are_4xx(admin_api: Api) -> None:
    def send(content: bytes, content_type: str = "application/json") -> object:
        return admin_api.post("/companies", content=content, headers={"content-type": content_type})

    assert_error(send(b'{"name": "a\\u0000b"}'), 400, "body")  # jsonb and text refuse NUL
    assert_error(send(b'{"name": "\\ud800"}'), 400, "body")
    assert_error(send(b'{"name": '), 400, "body")
    assert_error(send(b'{"name": "Acme"}', "text/plain"), 415, "content-type")
    assert_error(send(b'{"name": "' + b"x" * 1_100_000 + b'"}'), 413, "body")


def test_get_lists_pages_by_keyset_and_searches(admin_api: Api, pg_engine: Engine) -> None:
    names = [f"Company {n:02d}" for n in range(7)] + ["Acme Cobrancas", "ACME Telecom"]
    for name in names:
        assert admin_api.post("/companies", {"name": name}).status_code == 201

    seen: list[str] = []
    cursor = None
    for _ in range(10):  # bounded: 9 companies, 4 a page
        query = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = admin_api.get("/companies", params=query).json()
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names  # oldest first, each once

    found = admin_api.get("/companies", params={"q": "acme"}).json()["items"]
    assert [c["name"] for c in found] == ["Acme Cobrancas", "ACME Telecom"]
    exact = admin_api.get("/companies", params={"name": "ACME Telecom"}).json()["items"]
    assert [c["name"] for c in exact] == ["ACME Telecom"]
    assert admin_api.get("/companies", params={"q": "%"}).json()["items"] == []


def test_list_by_status(admin_api: Api) -> None:
    active = admin_api.post("/companies", {"name": "Active"}).json()
    paused = admin_api.post("/companies", {"name": "Paused"}).json()
    assert admin_api.patch(f"/companies/{paused['id']}", {"status": "disabled"}).status_code == 200

    def listed(status: str) -> list[str]:
        return [
            c["id"] for c in admin_api.get("/companies", params={"status": status}).json()["items"]
        ]

    assert listed("active") == [active["id"]]
    assert listed("disabled") == [paused["id"]]
    assert_error(admin_api.get("/companies", params={"status": "deleted"}), 422, "status")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzFd"}, "cursor"),  # base64 of [1]: a list of the wrong length
    ],
)
def test_bad_page_parameters_are_422(admin_api: Api, query: dict[str, str], field: str) -> None:
    assert_error(admin_api.get("/companies", params=query), 422, field)


def test_limit_500_is_allowed(admin_api: Api) -> None:
    assert admin_api.get("/companies", params={"limit": "500"}).status_code == 200


def test_patch_renames_and_disables_and_intake_follows(
    start_relay: StartRelay, make_token: MakeToken, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    company = add_company(pg_engine)
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay = start_relay()
    api = Api(relay.url, make_token())
    assert relay.post(company).status_code == 202

    renamed = api.patch(f"/companies/{company}", {"name": "Acme 2"})
    disabled = api.patch(f"/companies/{company}", {"status": "disabled"})

    assert renamed.status_code == 200 and renamed.json()["name"] == "Acme 2"
    assert disabled.json()["status"] == "disabled"
    assert eventually(lambda: relay.post(company).status_code == 404)  # within seconds
    api.patch(f"/companies/{company}", {"status": "active"})
    assert eventually(lambda: relay.post(company).status_code == 202)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "deleted"}, "status"),
        ({"name": ""}, "name"),
        ({"id": "x"}, "id"),
        ({"cluster": "cluster2"}, "cluster"),  # no token to go with it
        ({"platform_token": "two words here"}, "platform_token"),
        ({"platform_token": "short"}, "platform_token"),
        ({"platform_token": 12}, "platform_token"),
        ({"platform_token": None, "cluster": "cluster2"}, "platform_token"),
    ],
)
def test_patch_with_bad_values_is_422(admin_api: Api, body: dict[str, str], field: str) -> None:
    company = admin_api.post("/companies", {"name": "Acme"}).json()
    assert_error(admin_api.patch(f"/companies/{company['id']}", body), 422, field)
    assert admin_api.get(f"/companies/{company['id']}").json() == company


def test_a_platform_connection_is_set_moved_and_removed_and_the_token_never_shown(
    admin_api: Api, pg_engine: Engine
) -> None:
    created = admin_api.post(
        "/companies", {"name": "Acme", "platform_token": "tok-api-1", "cluster": "cluster2"}
    )
    assert created.status_code == 201, created.text
    company = created.json()
    assert company["platform"] == {"cluster": "cluster2", "stream": None}
    assert platform_columns(pg_engine, uuid.UUID(company["id"])) == ("tok-api-1", "cluster2")
    with pg_engine.begin() as conn:
        conn.execute(
            platform_streams.insert().values(
                company_id=uuid.UUID(company["id"]),
                state="connected",
                holder="relay-a",
                since=utc_now(),
                updated_at=utc_now(),
            )
        )

    moved = admin_api.patch(f"/companies/{company['id']}", {"cluster": "cluster1"}).json()
    renewed = admin_api.patch(f"/companies/{company['id']}", {"platform_token": "tok-api-2"})
    read = admin_api.get(f"/companies/{company['id']}")

    assert moved["platform"]["cluster"] == "cluster1"
    assert moved["platform"]["stream"]["state"] == "connected"
    assert moved["platform"]["stream"]["holder"] == "relay-a"
    for answer in (created, renewed, read, admin_api.get("/companies")):
        assert "tok-api" not in answer.text
    assert platform_columns(pg_engine, uuid.UUID(company["id"])) == ("tok-api-2", "cluster1")

    removed = admin_api.patch(f"/companies/{company['id']}", {"platform_token": None}).json()

    assert removed["platform"] is None
    assert platform_columns(pg_engine, uuid.UUID(company["id"])) == (None, None)
    refused = admin_api.post(
        "/companies", {"name": "B", "platform_token": "tok-api-b", "cluster": "c9"}
    )
    assert_error(refused, 422, "cluster")


def test_unknown_and_malformed_ids(admin_api: Api) -> None:
    nobody = uuid.uuid4()
    for response in (
        admin_api.get(f"/companies/{nobody}"),
        admin_api.patch(f"/companies/{nobody}", {"name": "x"}),
        admin_api.delete(f"/companies/{nobody}"),
    ):
        assert_error(response, 404, "company_id")
    assert_error(admin_api.get("/companies/acme"), 422, "company_id")


def test_delete_is_soft_and_takes_the_webhooks_with_it(
    start_relay: StartRelay, make_token: MakeToken, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    company = add_company(pg_engine)
    webhook = add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay = start_relay()
    api = Api(relay.url, make_token())

    response = api.delete(f"/companies/{company}")

    assert response.status_code == 200
    assert response.json() == {"id": str(company), "deleted": True}
    assert_error(api.get(f"/companies/{company}"), 404, "company_id")
    assert_error(api.get(f"/webhooks/{webhook}"), 404, "webhook_id")
    assert api.get("/companies").json()["items"] == []
    assert_error(api.delete(f"/companies/{company}"), 404, "company_id")
    with pg_engine.connect() as conn:  # the rows stay, for the execution log's rows
        assert conn.execute(sa.select(companies.c.status)).scalar() == "deleted"
        assert conn.execute(sa.select(webhooks.c.deleted)).scalar() is True
    assert eventually(lambda: relay.post(company).status_code == 404)


def test_the_api_on_the_embedded_sqlite_database(tmp_path: Path) -> None:
    """The embedded default: the same routes and keyset pages over a SQLite registry."""
    url = f"sqlite:///{tmp_path / 'var' / 'relay.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    store.add_user(engine, "alice", PASSWORD, role="admin", companies_allowed=None, now=utc_now())
    token = store.create_token(engine, "alice", scope="admin", company_id=None, now=utc_now())[1]
    engine.dispose()
    settings = RelaySettings(database_url=url, spool_path=tmp_path / "spool" / "spool.db")
    with ThreadedServer(RelayService(settings).app, lifespan="on") as server:
        api = Api(server.url, token)
        made = [api.post("/companies", {"name": f"C{n}"}).json()["id"] for n in range(5)]
        hooks = [
            api.post(f"/companies/{made[0]}/webhooks", {"url": f"https://h.example.com/{n}",
                                                        "events": ["call-history-was-created"]})
            for n in range(3)
        ]  # fmt: skip
        assert all(hook.status_code == 201 for hook in hooks)

        seen: list[str] = []
        cursor = None
        for _ in range(5):  # bounded
            page = api.get(
                "/companies", params={"limit": 2} | ({"cursor": cursor} if cursor else {})
            )
            seen += [c["id"] for c in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        first = api.get(f"/companies/{made[0]}/webhooks", params={"limit": 2}).json()
        rest = api.get(
            f"/companies/{made[0]}/webhooks", params={"cursor": first["next_cursor"]}
        ).json()

    assert seen == made
    assert [w["id"] for w in first["items"] + rest["items"]] == [h.json()["id"] for h in hooks]
    assert first["items"][0]["created_at"].endswith("+00:00")  # stored in UTC, said so
