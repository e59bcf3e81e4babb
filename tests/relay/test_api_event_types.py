"""`/api/v1/events`, the event catalog, over real HTTP: list it, add a type, and a running
relay accepts events of the new type within seconds."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from tests.relay.conftest import EVENT, add_company
from tests.relay.test_intake_http import assert_json_error as assert_error
from tests.support.api_fixtures import Api, MakeToken
from tests.support.relay_launcher import InProcessRelay
from tests.support.waiting import eventually

StartRelay = Callable[..., InProcessRelay]


SEEDED = 43  # the platform's event types (alembic/versions/0005)


def catalog(api: Api) -> list[dict[str, object]]:
    answer = api.get("/events", params={"limit": 200}).json()
    assert answer["next_cursor"] is None
    items: list[dict[str, object]] = answer["items"]
    return items


def test_the_catalog_lists_the_seeded_types_by_name(admin_api: Api) -> None:
    items = catalog(admin_api)
    assert len(items) == SEEDED
    assert [item["name"] for item in items] == sorted(str(item["name"]) for item in items)
    by_name = {item["name"]: item for item in items}
    assert by_name[EVENT] == {
        "name": EVENT,
        "display_name": "Call history was created",
        "id_path": "callHistory._id",
    }
    assert by_name["agent-status-changed"]["id_path"] is None


def test_add_a_type_and_intake_accepts_it(
    start_relay: StartRelay, make_token: MakeToken, pg_engine: Engine, event_catalog: None
) -> None:
    company = add_company(pg_engine)
    relay = start_relay()
    api = Api(relay.url, make_token())
    assert_error(relay.post(company, event="call-ended"), 422, "event")

    response = api.post(
        "/events", {"name": "call-ended", "display_name": "Call ended", "id_path": "call.id"}
    )

    assert response.status_code == 201, response.text
    assert response.json() == {
        "name": "call-ended",
        "display_name": "Call ended",
        "id_path": "call.id",
    }
    assert eventually(lambda: relay.post(company, event="call-ended").status_code == 202)
    assert len(catalog(api)) == SEEDED + 1
    hook = api.post(
        f"/companies/{company}/webhooks",
        {"url": "https://hooks.example.com/x", "events": ["call-ended"]},
    )
    assert hook.status_code == 201


def test_pages(admin_api: Api, event_catalog: None) -> None:
    for n in range(4):
        assert admin_api.post("/events", {"name": f"zz-type-{n}"}).status_code == 201
    names: list[str] = []
    cursor = None
    for _page in range(SEEDED):  # pages of 10: 5 of them
        params: dict[str, object] = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        answer = admin_api.get("/events", params=params).json()
        names += [e["name"] for e in answer["items"]]
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert len(names) == SEEDED + 4 == len(set(names))
    assert names == sorted(names)
    assert names[-4:] == ["zz-type-0", "zz-type-1", "zz-type-2", "zz-type-3"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": EVENT}, 409, "name"),
        ({}, 422, "name"),
        ({"name": ""}, 422, "name"),
        ({"name": "has spaces"}, 422, "name"),
        ({"name": "-leading-dash"}, 422, "name"),
        ({"name": "x" * 101}, 422, "name"),
        ({"name": ["call-ended"]}, 422, "name"),
        ({"name": "ok", "display_name": 3}, 422, "display_name"),
        ({"name": "ok", "display_name": "x" * 256}, 422, "display_name"),
        ({"name": "ok", "id_path": "a..b"}, 422, "id_path"),
        ({"name": "ok", "id_path": 7}, 422, "id_path"),
        ({"name": "ok", "schema": {}}, 422, "schema"),
    ],
)
def test_bad_types_are_refused(
    admin_api: Api, event_catalog: None, body: dict[str, object], status: int, field: str
) -> None:
    assert_error(admin_api.post("/events", body), status, field)
    assert len(catalog(admin_api)) == SEEDED
