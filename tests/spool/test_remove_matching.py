"""Erasing records by content: exactly the matching records and dead letters go, the per-key
counts stay exact, and the walk goes batch by batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spool import DurableQueue, Removed, SpoolDatabase


def is_secret(payload: bytes) -> bool:
    return payload.startswith(b"secret")


def test_only_matching_records_and_dead_letters_go(outbox: DurableQueue) -> None:
    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    outbox.append("a", b"secret-1", enqueued_at=t0)
    outbox.append("a", b"public-1", enqueued_at=t0 + timedelta(seconds=1))
    outbox.append("b", b"secret-2", enqueued_at=t0 + timedelta(seconds=2))
    outbox.append("c", b"public-2", enqueued_at=t0 + timedelta(seconds=3))
    outbox.append("c", b"secret-3", enqueued_at=t0 + timedelta(seconds=4))
    outbox.append("d", b"secret-dead")
    outbox.append("d", b"public-dead")
    for letter in outbox.fetch_oldest(10, key="d"):
        outbox.dead_letter(letter, "refused")

    assert outbox.remove_matching(is_secret) == Removed(records=3, dead_letters=1)

    assert [r.payload for r in outbox.fetch_oldest(10)] == [b"public-1", b"public-2"]
    assert [d.payload for d in outbox.dead_letters()] == [b"public-dead"]
    # Key "b" is gone; "a" and "c" keep their exact count and the oldest of what is left.
    assert {(b.key, b.pending, b.oldest_enqueued_at) for b in outbox.backlog()} == {
        ("a", 1, t0 + timedelta(seconds=1)),
        ("c", 1, t0 + timedelta(seconds=3)),
    }
    assert outbox.remove_matching(is_secret) == Removed(0, 0)


def test_the_walk_spans_many_batches(spool_db: SpoolDatabase) -> None:
    queue = DurableQueue(spool_db, "outbox")
    rows = 1_207  # the walk reads 500 rows at a time
    spool_db.write(
        lambda conn: [
            queue.append_in(conn, "k", b"secret" if n % 3 == 0 else b"public") for n in range(rows)
        ]
    )
    expected = len([n for n in range(rows) if n % 3 == 0])
    assert queue.remove_matching(is_secret) == Removed(expected, 0)
    assert queue.stats().pending == rows - expected
    assert queue.backlog()[0].pending == rows - expected
