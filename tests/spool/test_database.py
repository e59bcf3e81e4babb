"""The spool file: private on disk, refuses corruption, bounded, group-committed, WAL kept small."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from spool import (
    DurableQueue,
    SpoolCorruptError,
    SpoolDatabase,
    SpoolFullError,
    SpoolRecord,
)


@contextmanager
def leader_committing(db: SpoolDatabase) -> Iterator[None]:
    """Inside: another thread leads a group commit, held inside its operation; on exit it is
    released and its commit finishes."""
    inside, release = threading.Event(), threading.Event()

    def held(conn: sqlite3.Connection) -> None:
        inside.set()
        assert release.wait(10)

    leader = threading.Thread(target=db.write, args=(held,))
    leader.start()
    assert inside.wait(10)
    try:
        yield
    finally:
        release.set()
        leader.join(10)


def oldest(queue: DurableQueue, key: str, rows: int) -> list[SpoolRecord]:
    return queue.fetch_oldest(rows, key=key)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_file_and_directory_are_created_private(tmp_path: Path) -> None:
    path = tmp_path / "new-dir" / "spool.db"
    db = SpoolDatabase(path)
    DurableQueue(db, "outbox").append("k", b"x")
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600
    assert mode(Path(f"{path}-wal")) == 0o600
    db.close()


def test_journal_mode_is_wal_and_synchronous_full_on_every_connection(spool_path: Path) -> None:
    db = SpoolDatabase(spool_path)
    assert db.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    assert db.read(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL
    assert db.write(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2
    db.close()


def test_synchronous_normal_can_be_chosen(spool_path: Path) -> None:
    db = SpoolDatabase(spool_path, synchronous="NORMAL")
    assert db.read(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 1
    db.close()
    with pytest.raises(ValueError):
        SpoolDatabase(spool_path, synchronous="OFF")  # type: ignore[arg-type]


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(spool_path: Path) -> None:
    spool_path.parent.mkdir(parents=True)
    spool_path.write_bytes(b"this is not sqlite" * 500)
    before = digest(spool_path)
    with pytest.raises(SpoolCorruptError, match="left untouched"):
        SpoolDatabase(spool_path)
    assert digest(spool_path) == before


def test_a_truncated_spool_is_refused_and_left_untouched(spool_path: Path) -> None:
    db = SpoolDatabase(spool_path)
    queue = DurableQueue(db, "outbox")
    db.write(lambda c: [queue.append_in(c, f"k{i % 7}", b"x" * 700) for i in range(3000)])
    db.close()
    data = spool_path.read_bytes()
    spool_path.write_bytes(data[: len(data) // 2])
    before = digest(spool_path)
    with pytest.raises(SpoolCorruptError):
        SpoolDatabase(spool_path)
    assert digest(spool_path) == before


def test_past_the_bound_appends_fail_and_nothing_stored_is_dropped(spool_path: Path) -> None:
    db = SpoolDatabase(spool_path, max_bytes=256 * 1024)
    queue = DurableQueue(db, "outbox")
    stored = 0
    with pytest.raises(SpoolFullError, match="at its bound"):
        for _ in range(10_000):  # bounded: the bound is hit after a few hundred
            queue.append("k", b"x" * 1000)
            stored += 1
    assert 100 < stored < 10_000
    assert queue.stats().pending == stored
    # Work that finishes other work is not refused by the intake bound.
    receipt = db.write(lambda c: queue.append_in(c, "k", b"result"))
    assert receipt.pending == stored + 1
    # Draining frees room: appends are accepted again.
    queue.remove(oldest(queue, "k", 200))
    queue.append("k", b"x" * 1000)
    db.close()


def test_concurrent_appends_share_one_commit(spool_path: Path) -> None:
    """While one transaction is committing, every append that arrives joins the next one."""
    db = SpoolDatabase(spool_path)
    queue = DurableQueue(db, "outbox")
    followers = [threading.Thread(target=queue.append, args=(f"k{i}", b"x")) for i in range(8)]
    with leader_committing(db):
        commits_before = db.commits
        for thread in followers:
            thread.start()
        for _ in range(1000):  # wait (bounded) until all 8 are queued behind the leader
            if len(db._group.queue) == 8:
                break
            threading.Event().wait(0.005)
        assert len(db._group.queue) == 8
    for thread in followers:
        thread.join(10)
    assert db.commits - commits_before == 2  # the leader's, then all 8 followers together
    assert queue.stats().pending == 8
    db.close()


def test_a_failing_operation_undoes_only_itself(spool_path: Path) -> None:
    db = SpoolDatabase(spool_path)
    queue = DurableQueue(db, "outbox")

    def append_then_fail(conn: sqlite3.Connection) -> None:
        queue.append_in(conn, "bad", b"x")
        raise RuntimeError("caller's own failure")

    with pytest.raises(RuntimeError):
        db.write(append_then_fail)
    queue.append("good", b"y")
    assert {b.key: b.pending for b in queue.backlog()} == {"good": 1}
    db.close()


def test_two_queues_change_in_one_transaction(spool_path: Path) -> None:
    """The relay finishes a delivery (inbox) and appends its result (outbox) atomically."""
    db = SpoolDatabase(spool_path)
    inbox, outbox = DurableQueue(db, "inbox"), DurableQueue(db, "outbox")
    inbox.append("company", b"event")
    [delivery] = oldest(inbox, "company", 1)

    def finish(conn: sqlite3.Connection) -> None:
        inbox.remove_in(conn, [delivery])
        outbox.append_in(conn, "company", b"result")
        raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        db.write(finish)
    assert (inbox.stats().pending, outbox.stats().pending) == (1, 0)
    db.write(lambda conn: (inbox.remove_in(conn, [delivery]), outbox.append_in(conn, "c", b"r")))
    assert (inbox.stats().pending, outbox.stats().pending) == (0, 1)
    db.close()


def test_checkpoint_truncates_the_wal(spool_path: Path) -> None:
    db = SpoolDatabase(spool_path)
    queue = DurableQueue(db, "outbox")
    db.write(lambda c: [queue.append_in(c, "k", b"x" * 700) for _ in range(2000)])
    wal = Path(f"{spool_path}-wal")
    assert wal.stat().st_size > 1_000_000
    db.checkpoint()
    assert wal.stat().st_size == 0
    db.close()


def test_a_write_nested_in_a_write_fails_instead_of_deadlocking(spool_db: SpoolDatabase) -> None:
    queue = DurableQueue(spool_db, "outbox")
    with pytest.raises(RuntimeError, match="inside a write operation"):
        spool_db.write(lambda conn: queue.append("k", b"x"))
    assert queue.stats().pending == 0
    queue.append("k", b"still works")
    assert queue.stats().pending == 1


def test_after_commit_callbacks_run_only_for_committed_operations(
    spool_db: SpoolDatabase,
) -> None:
    ran: list[str] = []

    def succeeds(conn: sqlite3.Connection) -> None:
        spool_db.after_commit(lambda: ran.append("committed"))

    def fails(conn: sqlite3.Connection) -> None:
        spool_db.after_commit(lambda: ran.append("rolled back"))
        raise ValueError("operation failed")

    spool_db.write(succeeds)
    with pytest.raises(ValueError):
        spool_db.write(fails)
    assert ran == ["committed"]
    with pytest.raises(RuntimeError):
        spool_db.after_commit(lambda: None)  # outside a write


def test_append_listeners_hear_committed_appends(outbox: DurableQueue) -> None:
    heard: list[int] = []
    outbox.add_append_listener(lambda receipt: heard.append(receipt.pending))
    outbox.append("k", b"x")
    outbox.db.write(lambda conn: outbox.append_in(conn, "k", b"y"))
    assert heard == [1, 2]


def test_a_full_spool_refuses_each_queued_append_without_failing_the_others(
    spool_path: Path,
) -> None:
    """Group-committed appends past the bound each get SpoolFullError; other operations in
    the same transaction still commit."""
    db = SpoolDatabase(spool_path, max_bytes=1)  # already past its bound once created
    queue = DurableQueue(db, "outbox")
    leader_inside, release = threading.Event(), threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        leader_inside.set()
        assert release.wait(10)

    errors: list[BaseException] = []

    def append() -> None:
        try:
            queue.append("k", b"x")
        except SpoolFullError as exc:
            errors.append(exc)

    leader = threading.Thread(target=db.write, args=(hold,))
    leader.start()
    assert leader_inside.wait(10)
    appenders = [threading.Thread(target=append) for _ in range(4)]
    finisher = threading.Thread(
        target=db.write, args=(lambda conn: queue.append_in(conn, "k", b"result"),)
    )
    for thread in [*appenders, finisher]:
        thread.start()
    for _ in range(1000):  # bounded wait until all five are queued
        if len(db._group.queue) == 5:
            break
        threading.Event().wait(0.005)
    release.set()
    for thread in [leader, *appenders, finisher]:
        thread.join(10)
    assert len(errors) == 4
    assert queue.stats().pending == 1  # the unbounded append (a result) went through
    db.close()


def test_write_each_commits_every_operation_together_each_with_its_own_outcome(
    outbox: DurableQueue,
) -> None:
    db = outbox.db
    commits_before = db.commits

    def refuse(conn: sqlite3.Connection) -> None:
        outbox.append_in(conn, "refused", b"x")
        raise ValueError("this one only")

    outcomes = db.write_each(
        [
            lambda conn: outbox.append_in(conn, "a", b"1").pending,
            refuse,
            lambda conn: outbox.append_in(conn, "b", b"2").pending,
        ]
    )
    assert db.commits - commits_before == 1
    assert outcomes[0].get() == 1 and outcomes[2].get() == 1
    with pytest.raises(ValueError, match="this one only"):
        outcomes[1].get()
    assert {b.key: b.pending for b in outbox.backlog()} == {"a": 1, "b": 1}


def test_try_write_each_commits_on_the_calling_thread_when_the_lock_is_free(
    outbox: DurableQueue,
) -> None:
    db = outbox.db
    seen_on: list[int] = []

    def append(conn: sqlite3.Connection) -> int:
        seen_on.append(threading.get_ident())
        return outbox.append_in(conn, "a", b"1").pending

    outcomes = db.try_write_each([append, append])
    assert outcomes is not None and [o.get() for o in outcomes] == [1, 2]
    assert seen_on == [threading.get_ident()] * 2
    assert outbox.stats().pending == 2


def test_try_write_each_does_nothing_and_returns_at_once_while_another_process_writes(
    spool_path: Path,
) -> None:
    db = SpoolDatabase(spool_path, busy_timeout_seconds=30)
    queue = DurableQueue(db, "outbox")
    other = sqlite3.connect(spool_path, isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    try:
        ran: list[bool] = []
        # Would wait the 30 s busy timeout if it waited for the lock at all.
        assert db.try_write_each([lambda conn: ran.append(True)]) is None
        assert ran == [] and db.commits == 0
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert db.try_write_each([lambda conn: queue.append_in(conn, "a", b"1")]) is not None
    assert queue.stats().pending == 1
    db.close()


def test_try_write_each_leaves_the_batch_to_a_group_commit_in_progress(
    spool_db: SpoolDatabase,
) -> None:
    with leader_committing(spool_db):
        assert spool_db.try_write_each([lambda conn: None]) is None
    assert spool_db.commits == 1
