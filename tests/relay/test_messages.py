"""A message's timeline and its resend, against a real receiver: the dispatcher POSTs, signs
with the webhook's secret of the moment and logs; the inbox and the log (spool and
PostgreSQL) tell the story."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook

from relay.db.schema import webhooks
from relay.delivery.dispatcher import DispatchConfig
from relay.delivery.retry import RetryPolicy
from relay.errors import InputError
from relay.execution_log.sink import ExecutionLogSink
from relay.inbox.deliveries import EventInput, deliveries_for
from relay.inbox.resend import resend
from relay.inbox.timeline import message_timeline
from relay.registry.writes import new_signing_secret
from spool import Drainer, DrainPolicy
from tests.relay.conftest import EVENT, Parts, RunningReceiver, add_company, add_webhook
from tests.relay.test_dispatcher import run_due
from tests.support.relay_data import sample_event


def accept(parts: Parts, data: dict[str, Any] | None = None) -> str:
    """Accept one event for the company's webhooks; the message id of its one delivery."""
    parts.registry.refresh()
    event = EventInput(parts.company, EVENT, data or sample_event(), None)
    (delivery,) = deliveries_for(parts.registry.snapshot, event, "evt-1", datetime.now(UTC))
    parts.inbox.accept(parts.company, "evt-1", [delivery], caller_id=None)
    return delivery.id


def dispatch(parts: Parts, *, max_attempts: int = 6) -> int:
    """One dispatcher pass over what is due now (registry reloaded first, as a running
    relay would within seconds of a change)."""
    parts.registry.refresh()
    return run_due(
        parts, DispatchConfig(timeout_seconds=5, retry=RetryPolicy(max_attempts=max_attempts))
    )


def drain(parts: Parts, engine: Engine) -> None:
    Drainer(parts.outbox, ExecutionLogSink(engine), DrainPolicy()).drain_once(force=True)


def timeline(parts: Parts, engine: Engine, message_id: str, **kw: Any) -> dict[str, Any]:
    return message_timeline(engine, parts.inbox, parts.outbox, message_id, **kw).as_json()


def do_resend(parts: Parts, engine: Engine, message_id: str, **kw: Any) -> dict[str, Any]:
    return resend(engine, parts.inbox, parts.outbox, message_id, **kw).as_json()


def set_webhook(engine: Engine, webhook_id: uuid.UUID, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            webhooks.update()
            .where(webhooks.c.id == webhook_id)
            .values(updated_at=datetime.now(UTC), **values)
        )


def test_the_timeline_follows_a_message_from_pending_to_retrying_to_delivered(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    webhook = add_webhook(pg_engine, parts.company, f"{receiver.url}/flaky/1")
    message = accept(parts)
    (waiting,) = timeline(parts, pg_engine, message)["deliveries"]
    assert (waiting["state"], waiting["attempts"]) == ("pending", 0)

    before = datetime.now(UTC)
    assert dispatch(parts) == 1  # 503: retried in about 5 s
    story = timeline(parts, pg_engine, message)
    (retrying,) = story["deliveries"]
    assert (retrying["webhook_id"], retrying["state"], retrying["attempts"]) == (
        str(webhook),
        "retrying",
        1,
    )
    next_at = datetime.fromisoformat(retrying["next_attempt_at"])
    assert before + timedelta(seconds=4) < next_at < datetime.now(UTC) + timedelta(seconds=6)
    assert [(a["attempt"], a["status"], a["pending"]) for a in story["attempts"]] == [
        (1, "failed", True)
    ]

    drain(parts, pg_engine)  # attempt 1 now in PostgreSQL, attempt 2 will be in the spool
    with parts.spool.schema_transaction() as conn:  # make the retry due now
        conn.execute("UPDATE inbox_items SET due_at = 0")
    assert dispatch(parts) == 1
    story = timeline(parts, pg_engine, message)
    assert story["company_id"] == str(parts.company) and story["event_type"] == EVENT
    (delivered,) = story["deliveries"]
    assert (delivered["state"], delivered["attempts"], delivered["next_attempt_at"]) == (
        "delivered",
        2,
        None,
    )
    assert [(a["attempt"], a["status"], a["pending"]) for a in story["attempts"]] == [
        (1, "failed", False),
        (2, "success", True),
    ]


def test_a_final_failure_is_failed_for_good_and_unknown_messages_are_404(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    add_webhook(pg_engine, parts.company, f"{receiver.url}/status/410")
    message = accept(parts)
    dispatch(parts)
    drain(parts, pg_engine)
    (gone,) = timeline(parts, pg_engine, message)["deliveries"]
    assert (gone["state"], gone["attempts"]) == ("failed", 1)
    for unknown, limit in (("msg_unknown", None), (message, frozenset({uuid.uuid4()}))):
        with pytest.raises(InputError) as refused:
            timeline(parts, pg_engine, unknown, companies=limit)
        assert (refused.value.status, refused.value.field) == (404, "message_id")


def test_a_resend_arrives_with_the_original_id_signed_with_the_current_secret(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    old_secret = new_signing_secret()
    webhook = add_webhook(pg_engine, parts.company, f"{receiver.url}/status/410", secret=old_secret)
    message = accept(parts)
    dispatch(parts)  # 410 Gone: failed for good
    drain(parts, pg_engine)  # the delivery left the inbox: the body comes from the log
    new_secret = new_signing_secret()
    set_webhook(pg_engine, webhook, url=f"{receiver.url}/ok/fixed", secret=new_secret)

    receipt = do_resend(parts, pg_engine, message)
    assert receipt == {
        "message_id": message,
        "webhook_id": str(webhook),
        "attempt": 2,
        "queued": True,
    }
    assert dispatch(parts) == 1
    (first,) = receiver.receiver.on("/status/410")
    (again,) = receiver.receiver.on("/ok/fixed")
    assert again.headers["webhook-id"] == first.headers["webhook-id"] == message
    assert Webhook(new_secret).verify(again.body, again.headers) == json.loads(first.body)
    with pytest.raises(Exception, match="signature"):
        Webhook(old_secret).verify(again.body, again.headers)
    story = timeline(parts, pg_engine, message)
    assert [(a["attempt"], a["status"]) for a in story["attempts"]] == [
        (1, "failed"),
        (2, "success"),
    ]
    assert story["deliveries"][0]["state"] == "delivered"


def test_a_resend_while_a_retry_waits_replaces_it_and_one_due_is_left_to_go(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    add_webhook(pg_engine, parts.company, f"{receiver.url}/flaky/1")
    message = accept(parts)
    due_now = do_resend(parts, pg_engine, message)
    assert (due_now["queued"], due_now["attempt"]) == (False, 1)  # not tried yet: it is due
    dispatch(parts)  # 503: the retry waits about 5 s
    brought_forward = do_resend(parts, pg_engine, message)
    assert (brought_forward["queued"], brought_forward["attempt"]) == (True, 2)
    (item,) = parts.inbox.queue.find([message])  # the retry is gone, the resend took its place
    assert item.due_at <= datetime.now(UTC)
    assert dispatch(parts) == 1
    assert [r.headers["webhook-id"] for r in receiver.receiver.requests] == [message, message]
    assert parts.inbox.queue.count() == 0
    assert [a["attempt"] for a in timeline(parts, pg_engine, message)["attempts"]] == [1, 2]


def test_a_resend_to_another_webhook_of_the_company_and_the_refusals(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver, event_catalog: None
) -> None:
    add_webhook(pg_engine, parts.company, f"{receiver.url}/status/500/original")
    message = accept(parts)
    dispatch(parts)  # still in the inbox, retrying: its body comes from there
    other = add_webhook(pg_engine, parts.company, f"{receiver.url}/ok/other")
    receipt = do_resend(parts, pg_engine, message, webhook_id=other)
    assert (receipt["webhook_id"], receipt["attempt"], receipt["queued"]) == (str(other), 1, True)
    with parts.spool.schema_transaction() as conn:  # only the resend is due now
        conn.execute("UPDATE inbox_items SET due_at = due_at + 600000000 WHERE attempts > 0")
    dispatch(parts)
    (original,) = receiver.receiver.on("/status/500/original")
    (copy,) = receiver.receiver.on("/ok/other")
    assert copy.body == original.body and copy.headers["webhook-id"] == message
    states = {
        d["webhook_id"]: d["state"] for d in timeline(parts, pg_engine, message)["deliveries"]
    }
    assert sorted(states.values()) == ["delivered", "retrying"]

    stranger = add_webhook(pg_engine, add_company(pg_engine, "Other Co"), f"{receiver.url}/ok")
    disabled = add_webhook(pg_engine, parts.company, f"{receiver.url}/ok/disabled")
    set_webhook(pg_engine, disabled, status="disabled")
    with pg_engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO events (name) VALUES ('other-event')"))
    elsewhere = add_webhook(pg_engine, parts.company, f"{receiver.url}/ok", event="other-event")
    for webhook_id, status in (
        (stranger, 404),
        (uuid.uuid4(), 404),
        (disabled, 422),
        (elsewhere, 422),
    ):
        with pytest.raises(InputError) as refused:
            do_resend(parts, pg_engine, message, webhook_id=webhook_id)
        assert (refused.value.status, refused.value.field) == (status, "webhook_id")
    with pytest.raises(InputError) as hidden:
        do_resend(parts, pg_engine, message, companies=frozenset({uuid.uuid4()}))
    assert (hidden.value.status, hidden.value.field) == (404, "message_id")


def test_a_body_too_large_to_log_cannot_be_resent_once_out_of_the_inbox(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    add_webhook(pg_engine, parts.company, f"{receiver.url}/status/410")
    message = accept(parts, {"callHistory": {"number": "5511987654321"}, "blob": "x" * 70_000})
    dispatch(parts)
    drain(parts, pg_engine)
    with pytest.raises(InputError) as refused:
        do_resend(parts, pg_engine, message)
    assert (refused.value.status, refused.value.field) == (422, "message_id")
    assert "too large to log" in refused.value.message
