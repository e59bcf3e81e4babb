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


def test_the_catalog_lists_the_seeded_type(admin_api: Api) -> None:
    answer = admin_api.get("/events").json()
    assert answer == {
        "items": [{"name": EVENT, "display_name": "Call history was created"}],
        "next_cursor": None,
    }


def test_add_a_type_and_intake_accepts_it(
    start_relay: StartRelay, make_token: MakeToken, pg_engine: Engine, event_catalog: None
) -> None:
    company = add_company(pg_engine)
    relay = start_relay()
    api = Api(relay.url, make_token())
    assert_error(relay.post(company, event="call-ended"), 422, "event")

    response = api.post("/events", {"name": "call-ended", "display_name": "Call ended"})

    assert response.status_code == 201, response.text
    assert response.json() == {"name": "call-ended", "display_name": "Call ended"}
    assert eventually(lambda: relay.post(company, event="call-ended").status_code == 202)
    names = [e["name"] for e in api.get("/events").json()["items"]]
    assert names == ["call-ended", EVENT]
    hook = api.post(
        f"/companies/{company}/webhooks",
        {"url": "https://hooks.example.com/x", "events": ["call-ended"]},
    )
    assert hook.status_code == 201


def test_pages(admin_api: Api, event_catalog: None) -> None:
    for n in range(4):
        assert admin_api.post("/events", {"name": f"type-{n}"}).status_code == 201
    first = admin_api.get("/events", params={"limit": 3}).json()
    rest = admin_api.get("/events", params={"cursor": first["next_cursor"]}).json()
    names = [e["name"] for e in first["items"] + rest["items"]]
    assert names == [EVENT, "type-0", "type-1", "type-2", "type-3"]
    assert rest["next_cursor"] is None


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
        ({"name": "ok", "schema": {}}, 422, "schema"),
    ],
)
def test_bad_types_are_refused(
    admin_api: Api, event_catalog: None, body: dict[str, object], status: int, field: str
) -> None:
    assert_error(admin_api.post("/events", body), status, field)
    assert len(admin_api.get("/events").json()["items"]) == 1
