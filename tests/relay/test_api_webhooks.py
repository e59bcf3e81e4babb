"""`/api/v1/companies/{id}/webhooks` and `/api/v1/webhooks/{id}` over real HTTP, with a real
relay delivering to a real receiver: what the API changes is what the relay then does."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook

from relay.db.schema import webhook_events, webhooks
from relay.registry.cache import load_snapshot
from tests.relay.conftest import EVENT
from tests.relay.test_intake_http import assert_json_error as assert_error
from tests.support.api_fixtures import Api, MakeToken
from tests.support.receivers import RunningReceiver
from tests.support.relay_launcher import InProcessRelay
from tests.support.waiting import eventually

StartRelay = Callable[..., InProcessRelay]
PASSES = [{"field_path": "callHistory.campaign.id", "operator": "equals", "value": 201074}]
FAILS = [{"field_path": "callHistory.campaign.id", "operator": "equals", "value": 1}]
HOOK = "https://hooks.example.com/calls"


@pytest.fixture
def company(admin_api: Api) -> str:
    return str(admin_api.post("/companies", {"name": "Acme"}).json()["id"])


def create(api: Api, company: str, **fields: Any) -> dict[str, Any]:
    body = {"url": HOOK, "events": [EVENT]} | fields
    response = api.post(f"/companies/{company}/webhooks", body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_create_with_a_secret_shows_it_once(admin_api: Api, company: str) -> None:
    created = create(admin_api, company, name="CRM", secret=True, filters={EVENT: PASSES})

    secret = created.pop("secret")
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    assert created["company_id"] == company
    assert (created["name"], created["url"], created["events"]) == ("CRM", HOOK, [EVENT])
    assert created["filters"] == {EVENT: PASSES}
    assert (created["enabled"], created["signed"]) == (True, True)
    read = admin_api.get(f"/webhooks/{created['id']}")
    assert read.json() == created  # the same, without the secret
    listed = admin_api.get(f"/companies/{company}/webhooks").json()
    assert listed == {"items": [created], "next_cursor": None}
    assert "whsec_" not in read.text + str(listed)


def test_create_without_a_secret_is_unsigned(admin_api: Api, company: str) -> None:
    created = create(admin_api, company, secret=False)
    assert "secret" not in created
    assert (created["signed"], created["name"], created["filters"]) == (False, None, {EVENT: []})


def test_several_events_each_with_its_filters(
    admin_api: Api, company: str, pg_engine: Engine, second_event: str
) -> None:
    created = create(admin_api, company, events=[EVENT, second_event], filters={EVENT: FAILS})

    assert created["events"] == [second_event, EVENT]
    assert created["filters"] == {EVENT: FAILS, second_event: []}
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webhook_events)).scalar() == 2


INVALID_CREATES: list[tuple[dict[str, Any], str, str]] = [
    ({"url": "ftp://hooks.example.com/x"}, "url", "absolute http(s) URL"),
    ({"url": "hooks.example.com/x"}, "url", "absolute http(s) URL"),
    ({"url": "http://[::1"}, "url", "cannot be parsed"),
    ({"url": 5}, "url", "must be a string"),
    ({"events": ["no-such-event"]}, "events", "unknown event 'no-such-event'"),
    ({"events": []}, "events", "at least one event"),
    ({"events": EVENT}, "events", "array of strings"),
    ({"filters": {EVENT: [{"field_path": "a", "operator": "eq", "value": 1}]}}, "filters",
     f"{EVENT}[0].operator: unknown operator 'eq'"),
    ({"filters": {EVENT: {"field_path": "a"}}}, "filters", "expected an array"),
    ({"filters": {"call-ended": []}}, "filters", "not one of the webhook's events"),
    ({"filters": [PASSES]}, "filters", "must be an object"),
    ({"secret": "yes"}, "secret", "true or false"),
    ({"name": "x" * 256}, "name", "at most 255"),
    ({"colour": "red"}, "colour", "not a field"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "field", "phrase"), INVALID_CREATES)
def test_invalid_webhooks_are_422_naming_the_field_and_save_nothing(
    admin_api: Api, company: str, pg_engine: Engine, fields: dict[str, Any], field: str, phrase: str
) -> None:
    response = admin_api.post(
        f"/companies/{company}/webhooks", {"url": HOOK, "events": [EVENT]} | fields
    )

    assert_error(response, 422, field)
    assert phrase in response.json()["error"]
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webhooks)).scalar() == 0


def test_required_fields(admin_api: Api, company: str) -> None:
    path = f"/companies/{company}/webhooks"
    assert_error(admin_api.post(path, {"events": [EVENT]}), 422, "url")
    assert_error(admin_api.post(path, {"url": HOOK}), 422, "events")


def test_unknown_company_and_webhook_ids_are_404(admin_api: Api) -> None:
    nobody = uuid.uuid4()
    assert_error(admin_api.post(f"/companies/{nobody}/webhooks", {"url": HOOK, "events": [EVENT]}),
                 404, "company_id")  # fmt: skip
    assert_error(admin_api.get(f"/companies/{nobody}/webhooks"), 404, "company_id")
    for response in (
        admin_api.get(f"/webhooks/{nobody}"),
        admin_api.patch(f"/webhooks/{nobody}", {"enabled": False}),
        admin_api.delete(f"/webhooks/{nobody}"),
        admin_api.post(f"/webhooks/{nobody}/rotate-secret"),
    ):
        assert_error(response, 404, "webhook_id")
    assert_error(admin_api.get("/webhooks/12"), 422, "webhook_id")


def test_list_pages_by_keyset(admin_api: Api, company: str) -> None:
    made = [create(admin_api, company, name=f"hook {n}")["id"] for n in range(5)]
    first = admin_api.get(f"/companies/{company}/webhooks", params={"limit": 3}).json()
    second = admin_api.get(
        f"/companies/{company}/webhooks", params={"limit": 3, "cursor": first["next_cursor"]}
    ).json()
    assert [w["id"] for w in first["items"] + second["items"]] == made
    assert second["next_cursor"] is None


def test_patch_changes_each_part(admin_api: Api, company: str, second_event: str) -> None:
    created = create(admin_api, company, name="CRM", filters={EVENT: PASSES})
    path = f"/webhooks/{created['id']}"

    moved = admin_api.patch(path, {"url": "https://other.example.com/h", "name": None}).json()
    assert (moved["url"], moved["name"], moved["filters"]) == (
        "https://other.example.com/h", None, {EVENT: PASSES},
    )  # fmt: skip
    more = admin_api.patch(path, {"events": [EVENT, second_event]}).json()
    assert more["filters"] == {EVENT: PASSES, second_event: []}  # kept, new one unfiltered
    refiltered = admin_api.patch(path, {"filters": {second_event: FAILS}}).json()
    assert refiltered["filters"] == {EVENT: PASSES, second_event: FAILS}
    fewer = admin_api.patch(path, {"events": [second_event], "name": "only ended"}).json()
    assert (fewer["events"], fewer["name"]) == ([second_event], "only ended")
    assert admin_api.patch(path, {"enabled": False}).json()["enabled"] is False
    assert admin_api.get(path).json()["enabled"] is False
    assert admin_api.patch(path, {}).json()["updated_at"] >= fewer["updated_at"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://x"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["nope"]}, "events"),
        ({"filters": {"nope": []}}, "filters"),
        ({"filters": {EVENT: [{"operator": "equals"}]}}, "filters"),
        ({"enabled": "no"}, "enabled"),
        ({"secret": True}, "secret"),  # a secret is rotated, not patched
    ],
)
def test_patch_refuses_bad_values_and_changes_nothing(
    admin_api: Api, company: str, body: dict[str, Any], field: str
) -> None:
    created = create(admin_api, company, filters={EVENT: PASSES})
    path = f"/webhooks/{created['id']}"
    assert_error(admin_api.patch(path, body), 422, field)
    assert admin_api.get(path).json() == created


def test_rotate_secret_gives_a_new_one_shown_once(admin_api: Api, company: str) -> None:
    created = create(admin_api, company, secret=True)
    rotated = admin_api.post(f"/webhooks/{created['id']}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]
    assert "secret" not in admin_api.get(f"/webhooks/{created['id']}").json()


def test_what_the_api_changes_a_running_relay_does(
    start_relay: StartRelay, make_token: MakeToken, receiver: RunningReceiver, pg_engine: Engine
) -> None:
    relay = start_relay()
    api = Api(relay.url, make_token())
    company = api.post("/companies", {"name": "Acme"}).json()["id"]
    hook = create(api, company, url=f"{receiver.url}/ok/api", secret=True, filters={EVENT: PASSES})
    company_id = uuid.UUID(company)

    assert eventually(lambda: relay.post(company_id).json().get("deliveries") == 1)
    assert eventually(lambda: len(receiver.receiver.on("/ok/api")) >= 1)
    delivered = receiver.receiver.on("/ok/api")[0]
    Webhook(hook["secret"]).verify(delivered.body, delivered.headers)  # signed with it

    rotated = api.post(f"/webhooks/{hook['id']}/rotate-secret").json()["secret"]
    assert eventually(
        lambda: load_snapshot(pg_engine).webhooks[uuid.UUID(hook["id"])].secret == rotated
    )
    api.patch(f"/webhooks/{hook['id']}", {"filters": {EVENT: FAILS}})
    assert eventually(lambda: relay.post(company_id).json().get("deliveries") == 0)
    api.patch(f"/webhooks/{hook['id']}", {"filters": {EVENT: []}, "enabled": False})
    assert eventually(lambda: relay.service.registry.snapshot.webhooks == {})
    assert relay.post(company_id).json().get("deliveries") == 0
    api.patch(f"/webhooks/{hook['id']}", {"enabled": True})
    assert eventually(lambda: relay.post(company_id).json().get("deliveries") == 1)


def test_delete_is_soft(admin_api: Api, company: str, pg_engine: Engine) -> None:
    created = create(admin_api, company)
    response = admin_api.delete(f"/webhooks/{created['id']}")
    assert response.json() == {"id": created["id"], "deleted": True}
    assert_error(admin_api.get(f"/webhooks/{created['id']}"), 404, "webhook_id")
    assert admin_api.get(f"/companies/{company}/webhooks").json()["items"] == []
    with pg_engine.connect() as conn:  # kept for the execution log's rows
        row = conn.execute(sa.select(webhooks).where(webhooks.c.id == created["id"])).one()
    assert row.deleted is True
    assert uuid.UUID(created["id"]) not in load_snapshot(pg_engine).webhooks
