"""End to end: a real relay (uvicorn) and real receivers on 127.0.0.1, real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook

from relay.registry.writes import new_signing_secret
from tests.relay.conftest import add_company, add_webhook
from tests.support.receivers import RunningReceiver
from tests.support.relay_data import sample_event
from tests.support.relay_launcher import InProcessRelay, RelayProcess
from tests.support.waiting import eventually


def execution_rows(engine: Engine) -> list[sa.RowMapping]:
    with engine.connect() as conn:
        return list(
            conn.execute(sa.text("SELECT * FROM webhook_executions ORDER BY created_at")).mappings()
        )


def test_an_event_goes_from_intake_to_a_signed_post_and_a_log_row(
    start_relay: Callable[..., InProcessRelay], pg_engine: Engine, receiver: RunningReceiver
) -> None:
    company = add_company(pg_engine)
    secret = new_signing_secret()
    webhook = add_webhook(pg_engine, company, f"{receiver.url}/ok", secret=secret)
    relay = start_relay()
    answer = relay.post(company, event_id="call-1")
    assert answer.status_code == 202
    assert answer.json() == {"id": "call-1", "deliveries": 1}

    assert eventually(lambda: len(receiver.receiver.on("/ok")) == 1)
    [post] = receiver.receiver.on("/ok")
    Webhook(secret).verify(post.body, post.headers)  # raises if the signature is wrong
    assert post.headers["content-type"] == "application/json"
    assert post.headers["user-agent"].startswith("relay/")
    body = post.json()
    assert body["event_type"] == "call-history-was-created"
    assert body["company_id"] == str(company)
    assert body["data"] == sample_event()
    assert body["timestamp"].endswith("Z")

    assert eventually(lambda: len(execution_rows(pg_engine)) == 1)
    [row] = execution_rows(pg_engine)
    assert row["webhook_id"] == webhook
    assert row["company_id"] == company
    assert row["message_id"] == post.headers["webhook-id"]
    assert (row["status"], row["response_status"], row["attempt"]) == ("success", 200, 1)
    assert row["phone_number"] == "5582988628425"
    assert row["request_payload"] == body
    assert row["event_type"] == "call-history-was-created"
    assert row["event_id"] is not None


def test_a_hanging_receiver_does_not_block_another(
    start_relay: Callable[..., InProcessRelay],
    pg_engine: Engine,
    receiver: RunningReceiver,
    second_receiver: RunningReceiver,
) -> None:
    company = add_company(pg_engine)
    add_webhook(pg_engine, company, f"{receiver.url}/hang")
    add_webhook(pg_engine, company, f"{second_receiver.url}/ok")
    relay = start_relay(max_per_host=2, http_timeout_seconds=30)
    for n in range(6):
        assert relay.post(company, event_id=f"e{n}").json()["deliveries"] == 2
    assert eventually(lambda: len(second_receiver.receiver.on("/ok")) == 6, timeout=10)
    # The hanging host never holds more than its per-host share of the in-flight slots.
    assert len(receiver.receiver.on("/hang")) == 2
    # The receiver counts a POST when it arrives; its attempt leaves the in-flight set once
    # the dispatcher has read the answer, a moment later. The two hanging ones stay.
    assert eventually(lambda: relay.worker.dispatcher.in_flight == 2, timeout=10)


def test_filters_choose_the_webhooks(
    start_relay: Callable[..., InProcessRelay], pg_engine: Engine, receiver: RunningReceiver
) -> None:
    company = add_company(pg_engine)
    add_webhook(
        pg_engine,
        company,
        f"{receiver.url}/ok",
        filters=[{"field_path": "callHistory.campaign.id", "operator": "equals", "value": 201074}],
    )
    add_webhook(
        pg_engine,
        company,
        f"{receiver.url}/status/200",
        filters=[{"field_path": "callHistory.status", "operator": "greater_than", "value": 7}],
    )
    relay = start_relay()
    assert relay.post(company).json()["deliveries"] == 1
    assert eventually(lambda: len(receiver.receiver.on("/ok")) == 1)
    assert receiver.receiver.on("/status") == []


def test_a_relay_killed_right_after_202_delivers_after_restart(
    relay_processes: Callable[..., RelayProcess], pg_engine: Engine, receiver: RunningReceiver
) -> None:
    company = add_company(pg_engine)
    add_webhook(pg_engine, company, f"{receiver.url}/slow/1")
    relay = relay_processes(max_age_seconds=0.5, drain_interval_seconds=0.2).start()
    try:
        answer = relay.post(company)
    finally:
        relay.kill()  # right after the 202
    assert answer.status_code == 202
    relay.start()  # the same port and spool
    try:
        assert eventually(lambda: len(receiver.receiver.on("/slow")) >= 1, timeout=20)
        assert eventually(
            lambda: any(r["status"] == "success" for r in execution_rows(pg_engine)), timeout=20
        )
    finally:
        relay.stop_cleanly()
    ids = {r.headers["webhook-id"] for r in receiver.receiver.on("/slow")}
    assert len(ids) == 1  # redelivered, if at all, under the same webhook-id
