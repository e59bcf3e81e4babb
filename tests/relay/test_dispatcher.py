"""The dispatcher against a real receiver, with time frozen: retries follow the schedule,
Retry-After is honoured, 410 and most 4xx are final, every attempt is logged once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import Engine

from relay.delivery.dispatcher import DispatchConfig, Dispatcher
from relay.delivery.retry import RetryPolicy
from relay.delivery.transport.clients import HostClients
from relay.inbox.deliveries import EventInput, deliveries_for
from tests.relay.conftest import EVENT, Parts, add_webhook
from tests.support.receivers import RunningReceiver
from tests.support.relay_data import sample_event

START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# Real time for the event loops and the HTTP stack; frozen time for the relay's own clock.
REAL_TIME_MODULES = ["asyncio", "anyio", "httpx", "httpcore", "h11", "uvicorn", "starlette"]


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(START, ignore=REAL_TIME_MODULES) as clock:
        yield clock


def accept(parts: Parts, data: dict[str, object] | None = None) -> int:
    parts.registry.refresh()
    event = EventInput(parts.company, EVENT, data or sample_event(), None)
    deliveries = deliveries_for(parts.registry.snapshot, event, "evt-1", datetime.now(UTC))
    return parts.inbox.accept(parts.company, "evt-1", deliveries, caller_id=None).deliveries


def run_due(
    parts: Parts, config: DispatchConfig | None = None, *, clients: HostClients | None = None
) -> int:
    """One dispatcher pass over what is due now, waiting for its attempts. Default clients:
    receivers on 127.0.0.1 allowed."""

    async def go() -> int:
        nonlocal clients
        clients = clients or HostClients(connections_per_host=8, allow_private_destinations=True)
        dispatcher = Dispatcher(
            parts.inbox,
            parts.outbox,
            parts.registry,
            clients,
            config or DispatchConfig(timeout_seconds=5),
            random_fraction=lambda: 0.0,
        )
        try:
            return await dispatcher.run_due_once()
        finally:
            await clients.aclose()

    return asyncio.run(go())


def log_records(parts: Parts) -> list[dict[str, object]]:
    records = [
        r for b in parts.outbox.backlog() for r in parts.outbox.fetch_oldest(b.pending, key=b.key)
    ]
    return sorted((json.loads(r.payload) for r in records), key=lambda f: f["attempt"])


def test_retries_follow_the_schedule_until_success(
    frozen: FrozenDateTimeFactory, parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    add_webhook(pg_engine, parts.company, f"{receiver.url}/flaky/3")
    assert accept(parts) == 1
    waits = [timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2)]
    assert run_due(parts) == 1  # attempt 1: 503
    for wait in waits:
        frozen.tick(wait - timedelta(seconds=1))
        assert run_due(parts) == 0  # not yet
        frozen.tick(timedelta(seconds=1))
        assert run_due(parts) == 1
    assert parts.inbox.queue.count() == 0  # the 4th attempt succeeded
    records = log_records(parts)
    assert [(r["attempt"], r["status"], r["response_status"]) for r in records] == [
        (1, "failed", 503),
        (2, "failed", 503),
        (3, "failed", 503),
        (4, "success", 200),
    ]
    created = [datetime.fromisoformat(str(r["created_at"])) for r in records]
    assert created == [
        START,
        START + waits[0],
        START + sum(waits[:2], timedelta()),
        START + sum(waits, timedelta()),
    ]
    posts = receiver.receiver.on("/flaky")
    assert len(posts) == 4
    assert len({p.headers["webhook-id"] for p in posts}) == 1  # stable across retries
    assert len({p.body for p in posts}) == 1  # same bytes every time


def test_retry_after_is_honoured(
    frozen: FrozenDateTimeFactory, parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    add_webhook(pg_engine, parts.company, f"{receiver.url}/retry-after/90")
    accept(parts)
    run_due(parts)
    frozen.tick(timedelta(seconds=89))  # the schedule would say 5 s; the receiver said 90
    assert run_due(parts) == 0
    frozen.tick(timedelta(seconds=1))
    assert run_due(parts) == 1
    assert [r["response_status"] for r in log_records(parts)] == [429, 429]


@pytest.mark.parametrize("status", [410, 400, 404, 422])
def test_gone_and_client_errors_are_not_retried(
    status: int,
    frozen: FrozenDateTimeFactory,
    parts: Parts,
    pg_engine: Engine,
    receiver: RunningReceiver,
) -> None:
    add_webhook(pg_engine, parts.company, f"{receiver.url}/status/{status}")
    accept(parts)
    run_due(parts)
    assert parts.inbox.queue.count() == 0
    [record] = log_records(parts)
    assert (record["status"], record["response_status"], record["error"]) == (
        "failed",
        status,
        f"HTTP {status}",
    )


def test_attempts_stop_at_max_attempts(
    frozen: FrozenDateTimeFactory, parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    add_webhook(pg_engine, parts.company, f"{receiver.url}/status/500")
    accept(parts)
    config = DispatchConfig(timeout_seconds=5, retry=RetryPolicy(max_attempts=3))
    for _ in range(5):  # bounded: more passes than attempts allowed
        run_due(parts, config)
        frozen.tick(timedelta(hours=1))
    assert parts.inbox.queue.count() == 0
    assert [r["attempt"] for r in log_records(parts)] == [1, 2, 3]


def test_no_answer_logs_a_null_status_and_the_error(
    frozen: FrozenDateTimeFactory, parts: Parts, pg_engine: Engine
) -> None:
    add_webhook(pg_engine, parts.company, "http://127.0.0.1:9/nothing-listens-here")
    accept(parts)
    run_due(parts)
    [record] = log_records(parts)
    assert record["response_status"] is None
    assert "ConnectError" in str(record["error"])
    assert parts.inbox.queue.count() == 1  # rescheduled


def test_unlogged_events_are_delivered_but_not_logged(
    frozen: FrozenDateTimeFactory, parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    add_webhook(pg_engine, parts.company, f"{receiver.url}/ok")
    accept(parts)
    run_due(parts, DispatchConfig(timeout_seconds=5, is_logged=lambda event: False))
    assert len(receiver.receiver.on("/ok")) == 1
    assert log_records(parts) == []


def test_a_webhook_disabled_after_intake_gets_nothing(
    frozen: FrozenDateTimeFactory, parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    from relay.registry.writes import disable_webhook

    webhook = add_webhook(pg_engine, parts.company, f"{receiver.url}/ok")
    accept(parts)
    disable_webhook(pg_engine, webhook)
    parts.registry.refresh()
    run_due(parts)
    assert receiver.receiver.on("/ok") == []
    assert parts.inbox.queue.count() == 0
    assert log_records(parts) == []


def test_big_bodies_are_logged_as_a_stand_in(
    frozen: FrozenDateTimeFactory, parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    add_webhook(pg_engine, parts.company, f"{receiver.url}/ok")
    accept(parts, {**sample_event(), "blob": "x" * 100_000})
    run_due(parts, DispatchConfig(timeout_seconds=5, log_payload_max_bytes=1024))
    [record] = log_records(parts)
    stand_in = json.loads(str(record["request_payload"]))
    assert stand_in["truncated"] is True
    assert stand_in["size_bytes"] == len(receiver.receiver.on("/ok")[0].body)
    assert record["phone_number"] == "5582988628425"
