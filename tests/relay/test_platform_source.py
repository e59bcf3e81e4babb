"""The platform source end to end: a real python-socketio server on 127.0.0.1 stands in for
3C Plus (it checks each company's token and pushes events); a real relay on the suite's
PostgreSQL opens one stream per company, stores what arrives in its inbox and delivers it to
real receivers, which count every POST by its `webhook-id`."""

from __future__ import annotations

import contextlib
import copy
import sqlite3
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.registry import writes
from tests.relay.conftest import add_webhook
from tests.support import http_calls
from tests.support.platform_server import PlatformServer
from tests.support.receivers import RunningReceiver
from tests.support.relay_data import sample_event
from tests.support.relay_launcher import InProcessRelay, RelayProcess
from tests.support.waiting import eventually

EVENT = "call-history-was-created"
StartRelay = Callable[..., InProcessRelay]


@pytest.fixture
def platform() -> Iterator[PlatformServer]:
    with PlatformServer() as server:
        yield server


def platform_company(engine: Engine, platform: PlatformServer, name: str) -> uuid.UUID:
    """A company whose token the platform knows (cluster1, which the relay points at it)."""
    token = f"tok-{name}-{uuid.uuid4().hex[:8]}"
    platform.accept(token, name)
    return writes.add_company(engine, name, platform_token=token).id


def token_of(engine: Engine, company: uuid.UUID) -> str:
    with engine.connect() as conn:
        token: str = conn.execute(
            sa.text("SELECT platform_token FROM companies WHERE id = :id"), {"id": company}
        ).scalar_one()
    return token


def call(number: int, *, call_id: str | None = None) -> dict[str, Any]:
    """A realistic call-history-was-created body with its own callHistory._id."""
    event = copy.deepcopy(sample_event())
    history: dict[str, Any] = event["callHistory"]  # type: ignore[assignment]
    history["_id"] = call_id or f"call-{number:06d}"
    return event


def relay_on(start_relay: StartRelay, platform: PlatformServer, **settings: Any) -> InProcessRelay:
    return start_relay(platform_cluster1_url=platform.url, **settings)


def call_ids(receiver: RunningReceiver, path: str) -> list[str]:
    return [post.json()["data"]["callHistory"]["_id"] for post in receiver.receiver.on(path)]


def stream_row(engine: Engine, company: uuid.UUID) -> sa.RowMapping | None:
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.text("SELECT * FROM platform_streams WHERE company_id = :id"), {"id": company}
            )
            .mappings()
            .first()
        )


def test_three_companies_events_arrive_once_each_with_log_rows(
    platform: PlatformServer,
    start_relay: StartRelay,
    pg_engine: Engine,
    receiver: RunningReceiver,
) -> None:
    companies = [platform_company(pg_engine, platform, name) for name in ("a", "b", "c")]
    for company in companies:
        add_webhook(pg_engine, company, f"{receiver.url}/ok/{company}")
    relay_on(start_relay, platform)
    tokens = [token_of(pg_engine, company) for company in companies]
    assert eventually(lambda: all(platform.connected(token) == 1 for token in tokens))

    for n in range(5):
        for index, token in enumerate(tokens):
            assert platform.emit(token, EVENT, call(n, call_id=f"{index}-{n}")) == 1

    for index, company in enumerate(companies):
        path = f"/ok/{company}"
        assert eventually(lambda path=path: len(receiver.receiver.on(path)) == 5)
        assert sorted(call_ids(receiver, path)) == [f"{index}-{n}" for n in range(5)]
        for post in receiver.receiver.on(path):
            assert post.json()["company_id"] == str(company)
    webhook_ids = [post.webhook_id for post in receiver.receiver.on("/ok")]
    assert len(webhook_ids) == len(set(webhook_ids)) == 15
    assert eventually(lambda: execution_count(pg_engine) == 15)
    with pg_engine.connect() as conn:
        phones = set(
            conn.execute(sa.text("SELECT DISTINCT phone_number FROM webhook_executions")).scalars()
        )
    assert phones == {"5582988628425"}
    for company in companies:
        row = stream_row(pg_engine, company)
        assert row is not None and row["state"] == "connected"
    assert all(platform.connects(token) == 1 for token in tokens)  # never reconnected


def execution_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM webhook_executions")).scalar_one())


def test_a_repeated_platform_id_is_delivered_once(
    platform: PlatformServer,
    start_relay: StartRelay,
    pg_engine: Engine,
    receiver: RunningReceiver,
) -> None:
    company = platform_company(pg_engine, platform, "acme")
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay_on(start_relay, platform)
    token = token_of(pg_engine, company)
    assert eventually(lambda: platform.connected(token) == 1)

    for _repeat in range(3):
        platform.emit(token, EVENT, call(1, call_id="same-call"))
    platform.emit(token, EVENT, call(2, call_id="other-call"))

    assert eventually(lambda: len(receiver.receiver.on("/ok")) == 2)
    assert sorted(call_ids(receiver, "/ok")) == ["other-call", "same-call"]
    assert not eventually(lambda: len(receiver.receiver.on("/ok")) > 2, timeout=1.0)


def test_webhooks_added_and_disabled_change_the_stream_within_seconds(
    platform: PlatformServer,
    start_relay: StartRelay,
    pg_engine: Engine,
    receiver: RunningReceiver,
) -> None:
    company = platform_company(pg_engine, platform, "acme")
    token = token_of(pg_engine, company)
    relay_on(start_relay, platform)
    assert not eventually(lambda: platform.connected(token) > 0, timeout=1.5)  # no webhook yet

    first = add_webhook(pg_engine, company, f"{receiver.url}/calls")
    assert eventually(lambda: platform.connected(token) == 1, timeout=10)
    platform.emit(token, "agent-status-changed", {"agent": {"id": 7}})  # nobody wants it
    platform.emit(token, EVENT, call(1))
    assert eventually(lambda: len(receiver.receiver.on("/calls")) == 1)

    agents = add_webhook(pg_engine, company, f"{receiver.url}/agents", event="agent-status-changed")

    def agent_event_delivered() -> bool:
        platform.emit(token, "agent-status-changed", {"agent": {"id": 7}})
        return len(receiver.receiver.on("/agents")) > 0

    assert eventually(agent_event_delivered, timeout=10, step=0.2)
    assert platform.connects(token) == 1  # the subscription changed on the open stream

    for webhook in (first, agents):
        writes.edit_webhook(pg_engine, webhook, writes.WebhookChange(enabled=False))
    assert eventually(lambda: platform.connected(token) == 0, timeout=10)
    assert eventually(lambda: (stream_row(pg_engine, company) or {}).get("state") == "closed")


def test_a_refused_token_is_reported_and_retried_slowly(
    platform: PlatformServer,
    start_relay: StartRelay,
    pg_engine: Engine,
    receiver: RunningReceiver,
) -> None:
    company = writes.add_company(pg_engine, "acme", platform_token="tok-unknown").id
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay = relay_on(start_relay, platform, platform_refused_retry_seconds=3600)

    assert eventually(lambda: (stream_row(pg_engine, company) or {}).get("state") == "refused")
    row = stream_row(pg_engine, company)
    assert row is not None and "invalid token" in (row["detail"] or "")
    ready = http_calls.get(f"{relay.url}/readyz", timeout=10).json()
    assert ready["ready"] is True  # one company's token does not make the relay unfit
    assert ready["platform"]["not_connected"] == {str(company): "refused"}
    metrics = http_calls.get(f"{relay.url}/metrics", timeout=10).text
    assert f'relay_platform_stream_state{{company="{company}",state="refused"}} 1.0' in metrics
    attempts = platform.attempts("tok-unknown")
    assert not eventually(lambda: platform.attempts("tok-unknown") > attempts, timeout=2.0)
    assert attempts == 1


def test_twenty_platform_restarts_lose_no_event_and_deliver_none_twice(
    platform: PlatformServer,
    start_relay: StartRelay,
    pg_engine: Engine,
    receiver: RunningReceiver,
) -> None:
    """A steady stream while the platform restarts 20 times: every event the relay read is
    delivered once (by `webhook-id` and by call id), and it holds one connection at a time."""
    company = platform_company(pg_engine, platform, "acme")
    token = token_of(pg_engine, company)
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay = relay_on(start_relay, platform)
    sent: list[str] = []
    reconnect_seconds: list[float] = []
    number = 0
    assert eventually(lambda: platform.connected(token) == 1, timeout=15)
    for _restart in range(20):
        for _event in range(5):
            number += 1
            if platform.emit(token, EVENT, call(number)):
                sent.append(f"call-{number:06d}")
        platform.restart()
        restarted = time.monotonic()
        assert eventually(lambda: platform.connected(token) == 1, timeout=15)
        reconnect_seconds.append(time.monotonic() - restarted)

    def accepted() -> float:
        metrics = http_calls.get(f"{relay.url}/metrics", timeout=10).text
        line = f'relay_platform_events_total{{company="{company}",outcome="accepted"}} '
        return sum(float(row[len(line) :]) for row in metrics.splitlines() if row.startswith(line))

    # What the relay read is what it stored; an event a restart cut off in transit never
    # reached it (the platform does not replay), which the figures below show.
    assert eventually(lambda: len(receiver.receiver.on("/ok")) == accepted() > 0, timeout=15)
    delivered = Counter(call_ids(receiver, "/ok"))
    assert set(delivered) <= set(sent)
    assert max(delivered.values()) == 1
    webhook_ids = [post.webhook_id for post in receiver.receiver.on("/ok")]
    assert len(webhook_ids) == len(set(webhook_ids))
    assert platform.connects(token) == 21
    print(
        f"\n20 platform restarts: {len(sent)} events sent, {len(delivered)} read and delivered "
        f"once each; reconnect after a restart min {min(reconnect_seconds):.2f} s, median "
        f"{statistics.median(reconnect_seconds):.2f} s, max {max(reconnect_seconds):.2f} s"
    )


def stored_platform_ids(spool_path: Path, company: uuid.UUID) -> set[str]:
    """The call ids the relay had stored (committed to its spool) for the company."""
    with contextlib.closing(sqlite3.connect(spool_path)) as conn:
        keys = conn.execute(
            "SELECT key FROM intake_seen WHERE scope = ? AND key LIKE 'platform:%'",
            (str(company),),
        ).fetchall()
    return {key.rsplit(":", 1)[1] for (key,) in keys}


def test_every_event_stored_before_a_sigkill_is_delivered_after_the_restart(
    platform: PlatformServer,
    relay_processes: Callable[..., RelayProcess],
    pg_engine: Engine,
    receiver: RunningReceiver,
) -> None:
    """`relay serve` (intake, dispatcher, drain and platform processes) SIGKILLed while the
    platform streams and the receiver holds every POST back: what it had stored comes out
    of the spool after the restart."""
    company = platform_company(pg_engine, platform, "acme")
    token = token_of(pg_engine, company)
    add_webhook(pg_engine, company, f"{receiver.url}/slow/0.5")
    relay = relay_processes(
        platform_cluster1_url=platform.url, registry_check_seconds=0.2, http_timeout_seconds=30
    ).start()
    assert eventually(lambda: platform.connected(token) == 1, timeout=20)
    for number in range(40):
        platform.emit(token, EVENT, call(number))
    assert eventually(lambda: len(stored_platform_ids(relay.spool_path, company)) >= 20)

    relay.kill()  # the children die with it (PR_SET_PDEATHSIG)

    stored = stored_platform_ids(relay.spool_path, company)
    assert eventually(lambda: platform.connected(token) == 0)
    relay.start()
    assert eventually(lambda: stored <= set(call_ids(receiver, "/slow")), timeout=60)


def holders(engine: Engine, companies: list[uuid.UUID]) -> dict[uuid.UUID, str | None]:
    rows = {company: stream_row(engine, company) for company in companies}
    return {
        company: row["holder"] if row and row["state"] == "connected" else None
        for company, row in rows.items()
    }


def test_two_relays_on_one_database_hold_each_company_once_and_take_over_from_the_dead(
    platform: PlatformServer,
    relay_processes: Callable[..., RelayProcess],
    pg_engine: Engine,
    receiver: RunningReceiver,
) -> None:
    companies = [platform_company(pg_engine, platform, f"c{n}") for n in range(4)]
    tokens = [token_of(pg_engine, company) for company in companies]
    for company in companies:
        add_webhook(pg_engine, company, f"{receiver.url}/ok")
    settings = {
        "platform_cluster1_url": platform.url,
        "platform_locks": True,
        "registry_check_seconds": 0.2,
    }
    first = relay_processes("first", **settings).start()
    most_at_once = Counter[str]()

    def each_connected_once() -> bool:
        for token in tokens:
            most_at_once[token] = max(most_at_once[token], platform.connected(token))
        return all(platform.connected(token) == 1 for token in tokens)

    assert eventually(each_connected_once, timeout=30)
    assert eventually(lambda: None not in holders(pg_engine, companies).values())
    [first_holder] = set(holders(pg_engine, companies).values())
    second = relay_processes("second", **settings).start()
    assert eventually(lambda: "platform streams running" in second.log_since_start(), timeout=30)
    # Two lock rounds of the second relay and more: it takes nothing from a live holder.
    assert not eventually(
        lambda: (
            not each_connected_once()
            or set(holders(pg_engine, companies).values()) != {first_holder}
        ),
        timeout=12,
        step=0.1,
    )

    first.kill()
    killed = time.monotonic()
    assert eventually(
        lambda: (
            each_connected_once()
            and set(holders(pg_engine, companies).values()) - {first_holder, None} != set()
            and None not in holders(pg_engine, companies).values()
            and first_holder not in holders(pg_engine, companies).values()
        ),
        timeout=30,
        step=0.1,
    )
    taken_over_after = time.monotonic() - killed
    assert len(set(holders(pg_engine, companies).values())) == 1
    assert max(most_at_once.values()) == 1  # never two relays on one company's stream
    assert taken_over_after < 15
    assert second.alive
    print(f"\ntake-over after the holder's SIGKILL: {taken_over_after:.1f} s")
