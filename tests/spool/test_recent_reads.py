"""Readers' looks into the spool: the newest records of a queue, bounded however large the
backlog, and scheduled items found by id."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from spool import DurableQueue, ScheduledQueue, SpoolDatabase


def test_recent_gives_the_newest_records_first_and_looks_no_further_back_than_asked(
    outbox: DurableQueue,
) -> None:
    for n in range(10):
        outbox.append("a" if n % 2 else "b", f"record {n}".encode(), record_id=f"r{n}")
    assert [r.id for r in outbox.recent(3)] == ["r9", "r8", "r7"]
    # Per key: each key's own newest, merged newest first; other keys' rows are not counted.
    assert [r.id for r in outbox.recent(2, keys=["a", "b"])] == ["r9", "r8", "r7", "r6"]
    assert [r.id for r in outbox.recent(2, keys=["a"])] == ["r9", "r7"]
    assert outbox.recent(0) == []


def test_recent_keeps_only_the_ids_asked_for_whose_payloads_hold_every_text(
    outbox: DurableQueue,
) -> None:
    outbox.append("a", b'{"phone":"5511","status":"failed"}', record_id="old-match")
    outbox.append("a", b'{"phone":"5511","status":"success"}', record_id="phone-only")
    outbox.append("a", b'{"phone":"5599","status":"failed"}', record_id="status-only")
    outbox.append("a", b'{"phone":"5511","status":"failed"}', record_id="new-match")
    found = outbox.recent(10, containing=["5511", "failed"])
    assert [r.id for r in found] == ["new-match", "old-match"]
    # The bound is on the records looked at: the old match is past the newest two.
    assert [r.id for r in outbox.recent(2, containing=["5511", "failed"])] == ["new-match"]
    assert [r.id for r in outbox.recent(10, ids=["old-match", "status-only"])] == [
        "status-only",
        "old-match",
    ]
    assert [r.id for r in outbox.recent(2, ids=["old-match", "status-only"])] == ["status-only"]
    assert outbox.recent(10, ids=[]) == []


def test_texts_with_glob_characters_match_only_themselves(outbox: DurableQueue) -> None:
    outbox.append("a", "a*b?c[d] café".encode(), record_id="literal")
    outbox.append("a", b"aXXbYc[d]", record_id="lookalike")
    assert [r.id for r in outbox.recent(10, containing=["a*b?c[d]"])] == ["literal"]
    assert [r.id for r in outbox.recent(10, containing=["café"])] == ["literal"]
    assert [r.id for r in outbox.recent(10, containing=["c[d]"])] == ["lookalike", "literal"]


def test_find_returns_the_items_with_those_ids_in_enqueue_order(spool_db: SpoolDatabase) -> None:
    inbox = ScheduledQueue(spool_db, "inbox")
    due = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

    def enqueue(conn: sqlite3.Connection) -> None:
        for n in range(1200):  # more ids than one statement takes
            inbox.enqueue_in(conn, "host", b"x", item_id=f"msg-{n}", due_at=due)
        inbox.enqueue_in(conn, "host", b"again", item_id="msg-7", due_at=due + timedelta(1))

    spool_db.write(enqueue)
    found = inbox.find([f"msg-{n}" for n in (1100, 7, 3)] + ["unknown"])
    assert [(item.id, item.payload) for item in found] == [
        ("msg-3", b"x"),
        ("msg-7", b"x"),
        ("msg-1100", b"x"),
        ("msg-7", b"again"),
    ]
    assert len(inbox.find([f"msg-{n}" for n in range(1200)])) == 1201
    assert inbox.find([]) == []
