"""`/api/v1/executions`, `/messages`, `/webhooks/{id}/recover`, `/jobs` and `/stats` over
real HTTP, against a real relay delivering to a real receiver: what a person searching a
number right after a call finds, what a resend POSTs, what a recovery job sends."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.relay.conftest import EVENT, RunningReceiver
from tests.relay.test_intake_http import assert_json_error as assert_error
from tests.support.api_fixtures import Api, MakeToken
from tests.support.relay_launcher import InProcessRelay
from tests.support.waiting import eventually

StartRelay = Callable[..., InProcessRelay]
PHONE_AS_TYPED = "+55 (82) 98862-8425"  # the sample event's number, as a person types it
PHONE = "5582988628425"
NO_DRAIN = {"max_age_seconds": 3600.0, "drain_interval_seconds": 3600.0}  # rows stay pending


def json_of(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def new_company(api: Api, name: str) -> str:
    return str(json_of(api.post("/companies", {"name": name}), 201)["id"])


def new_webhook(api: Api, company: str, url: str, **fields: Any) -> dict[str, Any]:
    body = {"url": url, "events": [EVENT]} | fields
    created: dict[str, Any] = json_of(api.post(f"/companies/{company}/webhooks", body), 201)
    return created


def post_event(relay: InProcessRelay, company: str, **kw: Any) -> None:
    """Post an event once the relay's registry has loaded the company's webhooks (it checks
    every 0.2 s; before, the event would be accepted with no delivery)."""
    subscribed = (uuid.UUID(company), EVENT)
    assert eventually(lambda: subscribed in relay.service.registry.snapshot.subscriptions)
    answer = relay.post(uuid.UUID(company), **kw)
    assert (answer.status_code, answer.json()["deliveries"]) == (202, 1), answer.text


def items(api: Api, **query: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json_of(api.get("/executions", params=query))["items"]
    return found


def first_item(api: Api, **query: str) -> dict[str, Any] | None:
    found = items(api, **query)
    return found[0] if found else None


def test_a_number_searched_right_after_the_call_is_found_pending_and_only_by_its_company(
    start_relay: StartRelay, receiver: RunningReceiver, make_token: MakeToken
) -> None:
    relay = start_relay(**NO_DRAIN)
    api = Api(relay.url, make_token())
    acme, other = new_company(api, "Acme"), new_company(api, "Other")
    webhook = new_webhook(api, acme, f"{receiver.url}/acme/ok")
    new_webhook(api, other, f"{receiver.url}/other/ok")
    other_reader = api.as_token(make_token(scope="read", companies=[uuid.UUID(other)]))

    post_event(relay, acme)
    assert eventually(lambda: first_item(api, phone=PHONE_AS_TYPED) is not None)

    (row,) = items(api, phone=PHONE_AS_TYPED)
    assert row["pending"] is True  # not drained: still in the spool
    assert (row["company_id"], row["webhook_id"]) == (acme, webhook["id"])
    assert (row["phone_number"], row["event_type"], row["status"]) == (PHONE, EVENT, "success")
    assert (row["attempt"], row["response_status"], row["error"]) == (1, 200, None)
    assert [r["execution_id"] for r in items(api, message_id=row["message_id"])] == [
        row["execution_id"]
    ]
    assert items(api, phone=PHONE, status="failed") == []
    assert items(api, phone=PHONE, company_id=other) == []

    detail = json_of(api.get(f"/executions/{row['execution_id']}"))
    assert detail == row | {"request_payload": detail["request_payload"]}
    sent = receiver.receiver.on("/acme")[0].json()
    assert detail["request_payload"] == sent  # the body POSTed, envelope and all
    assert sent["data"]["callHistory"]["number"] == PHONE

    story = json_of(api.get(f"/messages/{row['message_id']}"))
    assert story["company_id"] == acme and story["event_type"] == EVENT
    assert [(d["webhook_id"], d["state"]) for d in story["deliveries"]] == [
        (webhook["id"], "delivered")
    ]
    assert [a["execution_id"] for a in story["attempts"]] == [row["execution_id"]]

    # A token limited to another company sees nothing of it, pending rows included.
    assert items(other_reader, phone=PHONE) == []
    assert items(other_reader, phone=PHONE, company_id=acme) == []
    assert_error(other_reader.get(f"/executions/{row['execution_id']}"), 404, "execution_id")
    assert_error(other_reader.get(f"/messages/{row['message_id']}"), 404, "message_id")


def test_a_resend_arrives_with_the_same_webhook_id_signed_with_the_current_secret(
    start_relay: StartRelay, receiver: RunningReceiver, make_token: MakeToken
) -> None:
    relay = start_relay()
    api = Api(relay.url, make_token())
    acme = new_company(api, "Acme")
    webhook = new_webhook(api, acme, f"{receiver.url}/crm/ok", secret=True)
    post_event(relay, acme)
    assert eventually(lambda: (first_item(api, company_id=acme) or {}).get("pending") is False)
    (first,) = items(api, company_id=acme)  # drained: read from PostgreSQL
    rotated = json_of(api.post(f"/webhooks/{webhook['id']}/rotate-secret"))["secret"]

    for token in (make_token(scope="read"), make_token(role="viewer", scope="read")):
        assert_error(api.as_token(token).post(f"/messages/{first['message_id']}/resend"), 403)
    receipt = json_of(api.post(f"/messages/{first['message_id']}/resend", {}), 202)

    assert receipt == {
        "message_id": first["message_id"],
        "webhook_id": webhook["id"],
        "attempt": 2,
        "queued": True,
    }
    assert eventually(lambda: len(receiver.receiver.on("/crm")) == 2)
    original, again = receiver.receiver.on("/crm")
    assert again.headers["webhook-id"] == original.headers["webhook-id"] == first["message_id"]
    assert again.json() == original.json()
    Webhook(rotated).verify(again.body, again.headers)  # raises if the signature is wrong
    with pytest.raises(Exception, match="signature"):
        Webhook(webhook["secret"]).verify(again.body, again.headers)

    def attempts() -> list[int]:
        story = json_of(api.get(f"/messages/{first['message_id']}"))
        return [attempt["attempt"] for attempt in story["attempts"]]

    assert eventually(lambda: attempts() == [1, 2])
    story = json_of(api.get(f"/messages/{first['message_id']}"))
    assert [(d["state"], d["attempts"]) for d in story["deliveries"]] == [("delivered", 2)]


def test_recovering_a_webhook_resends_what_failed_for_good_once_and_counts_agree(
    start_relay: StartRelay, receiver: RunningReceiver, make_token: MakeToken
) -> None:
    relay = start_relay(max_attempts=1)  # the first failure is final
    api = Api(relay.url, make_token())
    acme, other = new_company(api, "Acme"), new_company(api, "Other")
    webhook = new_webhook(api, acme, f"{receiver.url}/down/status/500")
    other_admin = api.as_token(make_token(companies=[uuid.UUID(other)]))
    for n in range(2):
        post_event(relay, acme, event_id=f"call-{n}")
    assert eventually(lambda: len(items(api, company_id=acme, status="failed")) == 2)
    json_of(api.patch(f"/webhooks/{webhook['id']}", {"url": f"{receiver.url}/fixed/ok"}))
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    assert_error(other_admin.post(f"/webhooks/{webhook['id']}/recover", {"since": since}), 404)
    job = json_of(api.post(f"/webhooks/{webhook['id']}/recover", {"since": since}), 202)

    assert (job["kind"], job["webhook_id"], job["state"]) == ("recover", webhook["id"], "running")
    assert eventually(lambda: json_of(api.get(f"/jobs/{job['id']}"))["state"] == "done")
    done = json_of(api.get(f"/jobs/{job['id']}"))
    assert (done["messages_sent"], done["rows_scanned"], done["error"]) == (2, 2, None)
    assert eventually(lambda: len(receiver.receiver.on("/fixed")) == 2)
    assert {p.headers["webhook-id"] for p in receiver.receiver.on("/fixed")} == {
        p.headers["webhook-id"] for p in receiver.receiver.on("/down")
    }
    assert_error(other_admin.get(f"/jobs/{job['id']}"), 404, "job_id")

    def counted() -> dict[str, Any]:
        answer: dict[str, Any] = json_of(api.get("/stats", params={"company_id": acme}))
        return answer

    assert eventually(lambda: counted()["by_status"] == {"failed": 2, "success": 2})
    totals = counted()
    assert totals["companies"] == [
        {"company_id": acme, "name": "Acme", "total": 4, "successes": 2, "failures": 2}
    ]
    assert sum(bucket["total"] for bucket in totals["buckets"]) == 4
    assert totals["bucket"] == "hour"
    daily = json_of(api.get("/stats", params={"company_id": acme, "bucket": "day"}))
    assert [bucket["total"] for bucket in daily["buckets"]] == [4]
    assert json_of(other_admin.get("/stats", params={"company_id": acme}))["companies"] == []


BAD_READS: list[tuple[str, dict[str, str], int, str | None]] = [
    ("/executions", {"phone": "no digits"}, 422, "phone"),
    ("/executions", {"status": "maybe"}, 422, "status"),
    ("/executions", {"limit": "501"}, 422, "limit"),
    ("/executions", {"limit": "0"}, 422, "limit"),
    ("/executions", {"cursor": "not-a-cursor"}, 422, "cursor"),
    ("/executions", {"since": "yesterday"}, 422, "since"),
    ("/executions", {"since": "2026-12-01T10:00:00"}, 422, "since"),  # no offset
    ("/executions", {"company_id": "acme"}, 422, "company_id"),
    ("/executions", {"phones": PHONE}, 422, "phones"),  # a typo must not widen the search
    ("/executions", {"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, 422, None),
    (f"/executions/{uuid.uuid4()}", {}, 404, "execution_id"),
    ("/executions/42", {}, 422, "execution_id"),
    ("/messages/no-such-message", {}, 404, "message_id"),
    ("/jobs/job_unknown", {}, 404, "job_id"),
    ("/stats", {"bucket": "week"}, 422, "bucket"),
    ("/stats", {"company": "x"}, 422, "company"),
    ("/stats", {"until": "soon"}, 422, "until"),
]


def test_bad_reads_and_writes_are_4xx_naming_the_field(
    start_relay: StartRelay, receiver: RunningReceiver, make_token: MakeToken
) -> None:
    relay = start_relay(**NO_DRAIN)
    api = Api(relay.url, make_token())
    acme = new_company(api, "Acme")
    webhook = new_webhook(api, acme, f"{receiver.url}/ok")
    for path, query, status, field in BAD_READS:
        response = api.get(path, params=query)
        assert response.status_code == status, (path, query, response.text)
        assert_error(response, status, field)
    assert_error(api.as_token(None).get("/executions"), 401)
    assert_error(api.as_token(make_token(scope="events")).get("/executions"), 403)

    post_event(relay, acme)
    assert eventually(lambda: first_item(api, company_id=acme) is not None)
    message = (first_item(api, company_id=acme) or {})["message_id"]
    resend = f"/messages/{message}/resend"
    assert_error(api.post(resend, {"webhook_id": "x"}), 422, "webhook_id")
    assert_error(api.post(resend, {"webhook_id": str(uuid.uuid4())}), 404, "webhook_id")
    assert_error(api.post(resend, {"webhook": webhook["id"]}), 422, "webhook")
    assert_error(api.post("/messages/nope/resend", {}), 404, "message_id")
    json_of(api.patch(f"/webhooks/{webhook['id']}", {"enabled": False}))
    assert_error(api.post(resend, {}), 422, "webhook_id")  # disabled: enable it first

    recover = f"/webhooks/{webhook['id']}/recover"
    assert_error(api.post(recover, {}), 422, "since")
    assert_error(api.post(recover, {"since": "last week"}), 422, "since")
    assert_error(api.post(recover, {"since": "2026-12-01T00:00:00Z", "status": "ok"}), 422)
    assert_error(api.post(f"/webhooks/{uuid.uuid4()}/recover", {"since": "2026-12-01T00:00Z"}), 404)
    # Nothing of that changed what was logged.
    assert [r["attempt"] for r in items(api, company_id=acme)] == [1]
