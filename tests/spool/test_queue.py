"""The durable queue: per-key counts, dead letters, acknowledged appends surviving SIGKILL."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from spool import DurableQueue, SpoolDatabase

APPENDER = Path(__file__).with_name("appender_process.py")


def test_backlog_counts_and_oldest_follow_appends_and_removals(outbox: DurableQueue) -> None:
    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    for second in range(5):
        outbox.append("a", b"x", enqueued_at=t0 + timedelta(seconds=second))
    outbox.append("b", b"y", enqueued_at=t0)
    assert {(b.key, b.pending, b.oldest_enqueued_at) for b in outbox.backlog()} == {
        ("a", 5, t0),
        ("b", 1, t0),
    }
    first_two = outbox.fetch_oldest(2, key="a")
    assert [r.enqueued_at for r in first_two] == [t0, t0 + timedelta(seconds=1)]
    outbox.remove(first_two)
    assert {(b.key, b.pending, b.oldest_enqueued_at) for b in outbox.backlog()} == {
        ("a", 3, t0 + timedelta(seconds=2)),
        ("b", 1, t0),
    }
    outbox.remove(outbox.fetch_oldest(1, key="b"))
    assert [b.key for b in outbox.backlog()] == ["a"]


def test_append_receipt_counts_pending_for_its_key(outbox: DurableQueue) -> None:
    receipts = [outbox.append("a", b"x") for _ in range(3)]
    assert [r.pending for r in receipts] == [1, 2, 3]
    assert len({r.record_id for r in receipts}) == 3
    assert outbox.append("b", b"x").pending == 1


def test_a_batch_append_counts_each_record_in_turn_and_commits_with_its_transaction(
    outbox: DurableQueue, spool_db: SpoolDatabase
) -> None:
    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    outbox.append("a", b"earlier", enqueued_at=t0)
    woken: list[tuple[str, int]] = []
    outbox.add_append_listener(lambda receipt: woken.append((receipt.key, receipt.pending)))
    records = [("a", b"1", "id-1"), ("b", b"2", None), ("a", b"3", "id-3")]

    def append_then_fail(conn: sqlite3.Connection) -> None:
        outbox.append_many_in(conn, records, enqueued_at=t0 + timedelta(seconds=5))
        raise RuntimeError("the caller's transaction fails after the append")

    with pytest.raises(RuntimeError):
        spool_db.write(append_then_fail)
    assert [(b.key, b.pending) for b in outbox.backlog()] == [("a", 1)]
    assert woken == []  # nothing was committed, so nobody is told

    receipts = spool_db.write(
        lambda conn: outbox.append_many_in(conn, records, enqueued_at=t0 + timedelta(seconds=5))
    )
    assert [(r.key, r.pending) for r in receipts] == [("a", 2), ("b", 1), ("a", 3)]
    assert [receipts[0].record_id, receipts[2].record_id] == ["id-1", "id-3"]
    assert woken == [("a", 2), ("b", 1), ("a", 3)]
    assert {(b.key, b.pending, b.oldest_enqueued_at) for b in outbox.backlog()} == {
        ("a", 3, t0),
        ("b", 1, t0 + timedelta(seconds=5)),
    }
    stored = outbox.fetch_oldest(10)
    assert [(r.key, r.payload) for r in stored] == [
        ("a", b"earlier"),
        *[(k, p) for k, p, _ in records],
    ]
    assert stored[2].id == receipts[1].record_id  # a missing id is made, and reported


def test_records_keep_their_payload_bytes_and_ids(outbox: DurableQueue) -> None:
    receipt = outbox.append("a", b"\x00\xffbinary", record_id="fixed-id")
    [record] = outbox.fetch_oldest(10, key="a")
    assert (record.id, record.key, record.payload) == ("fixed-id", "a", b"\x00\xffbinary")
    assert receipt.record_id == "fixed-id"


def test_enqueue_time_comes_from_the_injected_clock(spool_db: SpoolDatabase) -> None:
    with freeze_time("2026-11-25 12:00:00"):
        queue = DurableQueue(spool_db, "outbox")
        queue.append("a", b"x")
    [backlog] = queue.backlog()
    assert backlog.oldest_enqueued_at == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_dead_letters_keep_the_error_and_retry_with_the_same_id(outbox: DurableQueue) -> None:
    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    outbox.append("a", b"bad", record_id="r1", enqueued_at=t0)
    outbox.append("a", b"good", record_id="r2", enqueued_at=t0)
    bad = outbox.fetch_oldest(1, key="a")[0]
    outbox.dead_letter(bad, "value too long for type character varying(20)")
    [dead] = outbox.dead_letters()
    assert (dead.id, dead.key, dead.payload) == ("r1", "a", b"bad")
    assert "too long" in dead.error
    assert outbox.stats().pending == 1 and outbox.stats().dead_letters == 1

    assert outbox.retry_dead_letters(["no-such-id"]) == 0
    assert outbox.retry_dead_letters(["r1"]) == 1
    assert outbox.stats().dead_letters == 0
    ids = [r.id for r in outbox.fetch_oldest(10, key="a")]
    assert sorted(ids) == ["r1", "r2"]
    [backlog] = outbox.backlog()
    assert backlog.oldest_enqueued_at == t0  # still due at once


def test_retry_all_dead_letters(outbox: DurableQueue) -> None:
    for i in range(3):
        outbox.append("a", b"x", record_id=f"r{i}")
    for record in outbox.fetch_oldest(3, key="a"):
        outbox.dead_letter(record, "boom")
    assert outbox.stats().pending == 0
    assert outbox.retry_dead_letters() == 3
    assert outbox.stats().pending == 3


def test_acknowledged_appends_survive_sigkill_mid_append(spool_path: Path) -> None:
    """A writer killed with SIGKILL while appending leaves a readable spool holding every
    record whose append had returned."""
    process = subprocess.Popen(
        [sys.executable, str(APPENDER), str(spool_path), "4"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    acknowledged: list[str] = []
    for line in process.stdout:  # bounded: the appender stops by itself after 20,000
        acknowledged.append(line.strip())
        if len(acknowledged) >= 400:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    acknowledged.extend(line.strip() for line in process.stdout.readlines())
    assert process.returncode == -signal.SIGKILL

    db = SpoolDatabase(spool_path)  # integrity check passes
    queue = DurableQueue(db, "outbox")
    stored = {r.id for b in queue.backlog() for r in queue.fetch_oldest(b.pending, key=b.key)}
    assert set(acknowledged) <= stored
    assert sum(b.pending for b in queue.backlog()) == len(stored)  # bookkeeping consistent
    db.close()


def test_removing_the_oldest_records_keeps_every_key_exact(outbox: DurableQueue) -> None:
    """The drain's range delete, and the per-record path for a list with gaps."""
    for n in range(30):
        outbox.append(f"k{n % 3}", str(n).encode())
    oldest = outbox.fetch_oldest(10)
    outbox.remove(oldest)
    assert {b.key: b.pending for b in outbox.backlog()} == {"k0": 6, "k1": 7, "k2": 7}
    remaining = outbox.fetch_oldest(100)
    assert [r.payload for r in remaining] == [str(n).encode() for n in range(10, 30)]
    gappy = remaining[::2]  # not a whole range: removed one by one
    outbox.remove(gappy)
    assert [r.payload for r in outbox.fetch_oldest(100)] == [
        str(n).encode() for n in range(11, 30, 2)
    ]
    assert sum(b.pending for b in outbox.backlog()) == 10
    outbox.remove(gappy)  # removing again changes nothing
    assert sum(b.pending for b in outbox.backlog()) == 10
