"""`relay purge --phone NUMBER`: exactly that number's rows go, from the spool (pending and dead
letters) and from PostgreSQL, and a drain running meanwhile cannot slip rows past it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.execution_log.purge import PurgeError, purge_phone
from relay.execution_log.sink import ExecutionLogSink
from relay.runtime.wiring import EXECUTION_LOG_QUEUE
from spool import Drainer, DrainPolicy, DurableQueue, Outcome, SpoolDatabase, SpoolRecord
from tests.support.relay_data import make_result

RELAY = str(Path(sys.executable).with_name("relay"))
ALICE, BOB, CAROL = "5511987654321", "5521912345678", "5531955554444"


@pytest.fixture
def env(pg_url: str, spool_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return clean | {"RELAY_DATABASE_URL": pg_url, "RELAY_SPOOL_PATH": str(spool_path)}


def relay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RELAY, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def append(queue: DurableQueue, phone: str | None, count: int) -> None:
    for _ in range(count):
        result = make_result(uuid.uuid4(), phone_number=phone)
        queue.append(result.spool_key(), result.spool_payload())


def drain_all(queue: DurableQueue, engine: Engine) -> None:
    drainer = Drainer(queue, ExecutionLogSink(engine), DrainPolicy())
    assert drainer.drain_once(force=True).outcome is Outcome.WRITTEN


def bury(queue: DurableQueue, phone: str, count: int) -> None:
    """Spool `count` rows of `phone` and move them to the dead letters."""
    append(queue, phone, count)
    for record in queue.fetch_oldest(1_000):
        if phone.encode() in record.payload:
            queue.dead_letter(record, "refused")


def logged_phones(engine: Engine) -> Counter[str | None]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT phone_number FROM webhook_executions")).scalars()
        return Counter(rows)


def spooled_phones(queue: DurableQueue) -> tuple[Counter[str | None], Counter[str | None]]:
    """(pending, dead letters) per phone number."""
    pending = Counter(_phone(r.payload) for r in queue.fetch_oldest(10_000))
    dead = Counter(_phone(d.payload) for d in queue.dead_letters())
    return pending, dead


def _phone(payload: bytes) -> str | None:
    for phone in (ALICE, BOB, CAROL):
        if phone.encode() in payload:
            return phone
    return None


@pytest.fixture
def spread(spool_path: Path, pg_engine: Engine) -> Iterator[DurableQueue]:
    """Three numbers (and rows without one) in PostgreSQL, pending, and in dead letters."""
    db = SpoolDatabase(spool_path)
    queue = DurableQueue(db, EXECUTION_LOG_QUEUE)
    for phone, logged in ((ALICE, 3), (BOB, 2), (CAROL, 4), (None, 2)):
        append(queue, phone, logged)
    drain_all(queue, pg_engine)
    bury(queue, ALICE, 1)
    bury(queue, CAROL, 2)
    for phone, pending in ((ALICE, 2), (BOB, 1), (CAROL, 1), (None, 1)):
        append(queue, phone, pending)
    assert logged_phones(pg_engine) == Counter({ALICE: 3, BOB: 2, CAROL: 4, None: 2})
    assert spooled_phones(queue) == (
        Counter({ALICE: 2, BOB: 1, CAROL: 1, None: 1}),
        Counter({ALICE: 1, CAROL: 2}),
    )
    yield queue
    db.close()


def test_purge_removes_exactly_the_numbers_rows_everywhere(
    spread: DurableQueue, env: dict[str, str], pg_engine: Engine
) -> None:
    result = relay(env, "purge", "--phone", "+55 (11) 98765-4321")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "purged 3 rows from the spool, 3 from the execution log (1 dead letters)"
    )
    assert logged_phones(pg_engine) == Counter({BOB: 2, CAROL: 4, None: 2})
    assert spooled_phones(spread) == (
        Counter({BOB: 1, CAROL: 1, None: 1}),
        Counter({CAROL: 2}),
    )
    assert spread.stats().pending == 3  # the per-company counts follow
    again = relay(env, "purge", "--phone", ALICE)
    assert again.stdout.strip() == (
        "purged 0 rows from the spool, 0 from the execution log (0 dead letters)"
    )


@pytest.mark.parametrize("number", ["", "no digits", "1" * 21, "+55 (11) 98765-4321 ext 12345678"])
def test_a_bad_number_exits_2_naming_the_option(env: dict[str, str], number: str) -> None:
    result = relay(env, "purge", "--phone", number)
    assert result.returncode == 2
    assert "argument --phone" in result.stderr
    assert "Traceback" not in result.stderr


class GatedSink:
    """The real sink, stopped inside `write` (the drain lock held) until the test opens it."""

    def __init__(self, sink: ExecutionLogSink) -> None:
        self.sink = sink
        self.entered = threading.Event()
        self.gate = threading.Event()

    def write(self, records: Sequence[SpoolRecord]) -> None:
        self.entered.set()
        assert self.gate.wait(30)
        self.sink.write(records)


def test_purge_waits_for_a_drain_cycle_and_misses_none_of_its_rows(
    spread: DurableQueue, pg_engine: Engine
) -> None:
    gated = GatedSink(ExecutionLogSink(pg_engine))
    drainer = Drainer(spread, gated, DrainPolicy())
    drain = threading.Thread(target=drainer.drain_once, kwargs={"force": True})
    drain.start()
    assert gated.entered.wait(30)  # the cycle has fetched Alice's 2 pending rows
    reports = []
    purge = threading.Thread(
        target=lambda: reports.append(purge_phone(spread, pg_engine, ALICE, wait_seconds=30))
    )
    purge.start()
    purge.join(0.5)
    assert purge.is_alive(), "the purge must wait for the drain cycle"
    gated.gate.set()
    drain.join(30)
    purge.join(30)
    # The cycle committed Alice's 2 pending rows to PostgreSQL; the purge found them there.
    assert [(r.spool_rows, r.dead_letters, r.logged_rows) for r in reports] == [(1, 1, 5)]
    assert ALICE not in logged_phones(pg_engine)
    assert ALICE not in spooled_phones(spread)[0] + spooled_phones(spread)[1]


def test_purge_gives_up_when_a_drain_keeps_the_lock(
    spread: DurableQueue, pg_engine: Engine
) -> None:
    gated = GatedSink(ExecutionLogSink(pg_engine))
    drain = threading.Thread(
        target=Drainer(spread, gated, DrainPolicy()).drain_once, kwargs={"force": True}
    )
    drain.start()
    try:
        assert gated.entered.wait(30)
        with pytest.raises(PurgeError, match=r"drain\.lock after 0\.2 s; nothing was purged"):
            purge_phone(spread, pg_engine, ALICE, wait_seconds=0.2)
    finally:
        gated.gate.set()
        drain.join(30)
    assert logged_phones(pg_engine)[ALICE] == 5  # 3 before, 2 from the cycle
