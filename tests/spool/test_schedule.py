"""The scheduled queue (the relay's inbox) and seen keys (idempotent intake), on real files."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from spool import ScheduledQueue, SeenKeys, SpoolDatabase

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_items_come_due_in_time_order_and_can_be_excluded(spool_db: SpoolDatabase) -> None:
    queue = ScheduledQueue(spool_db, "inbox", clock=lambda: T0)

    def fill(conn: sqlite3.Connection) -> None:
        queue.enqueue_in(
            conn, "host-a", b"later", item_id="later", due_at=T0 + timedelta(seconds=30)
        )
        queue.enqueue_in(conn, "host-a", b"now-a", item_id="now-a")
        queue.enqueue_in(conn, "host-b", b"now-b", item_id="now-b")

    spool_db.write(fill)
    assert [i.id for i in queue.due(T0, 10)] == ["now-a", "now-b"]
    first = queue.due(T0, 1)[0]
    assert [i.id for i in queue.due(T0, 10, exclude={first.seq})] == ["now-b"]
    assert [i.id for i in queue.due(T0, 10, exclude_keys={"host-a"})] == ["now-b"]
    assert queue.next_due_at(exclude={i.seq for i in queue.due(T0, 10)}) == T0 + timedelta(
        seconds=30
    )
    assert [i.id for i in queue.due(T0 + timedelta(seconds=30), 10)] == ["now-a", "now-b", "later"]
    assert queue.due(T0, 0) == []


def test_reschedule_counts_attempts_and_complete_removes(spool_db: SpoolDatabase) -> None:
    queue = ScheduledQueue(spool_db, "inbox", clock=lambda: T0)
    spool_db.write(lambda conn: queue.enqueue_in(conn, "k", b"x", item_id="d1"))
    [item] = queue.due(T0, 10)
    assert item.attempts == 0
    spool_db.write(lambda conn: queue.reschedule_in(conn, item, T0 + timedelta(seconds=5)))
    assert queue.due(T0, 10) == []
    [again] = queue.due(T0 + timedelta(seconds=5), 10)
    assert (again.id, again.attempts, again.payload) == ("d1", 1, b"x")
    spool_db.write(lambda conn: queue.complete_in(conn, again))
    assert queue.count() == 0
    assert queue.next_due_at() is None


def test_seen_keys_answer_within_their_window_and_expire(spool_db: SpoolDatabase) -> None:
    seen = SeenKeys(spool_db, "intake", ttl=timedelta(hours=24))
    spool_db.write(lambda conn: seen.remember_in(conn, "company", "event-1", b"first", T0))
    lookup = lambda now: spool_db.write(  # noqa: E731
        lambda conn: seen.lookup_in(conn, "company", "event-1", now)
    )
    assert lookup(T0 + timedelta(hours=23)) == b"first"
    assert lookup(T0 + timedelta(hours=24)) is None  # the window is over
    assert spool_db.write(lambda conn: seen.lookup_in(conn, "other", "event-1", T0)) is None
    assert seen.expire(T0 + timedelta(hours=25)) == 1
    assert seen.expire(T0 + timedelta(hours=25)) == 0
