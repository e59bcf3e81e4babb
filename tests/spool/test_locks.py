"""The drain lock: a flock shared by processes, held by every drain cycle, skipped when taken."""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from freezegun import freeze_time

from spool import (
    Drainer,
    DrainPolicy,
    DurableQueue,
    FileLock,
    Outcome,
    SpoolDatabase,
    SpoolRecord,
    drain_lock,
)
from spool.testing import InMemorySink

HOLDER = """
import fcntl, sys
with open(sys.argv[1], "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.read()
"""


@contextmanager
def held_by_another_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait(30)


class LockProbingSink(InMemorySink):
    """The in-memory sink, noting whether the drain lock was free each time it wrote."""

    def __init__(self, lock_path: Path) -> None:
        super().__init__()
        self.lock_path = lock_path
        self.lock_was_free: list[bool] = []

    def write(self, records: Sequence[SpoolRecord]) -> None:
        probe = FileLock(self.lock_path)
        free = probe.acquire()
        if free:
            probe.release()
        self.lock_was_free.append(free)
        super().write(records)


def drainer(queue: DurableQueue, sink: LockProbingSink, wait: float = 0.0) -> Drainer:
    policy = DrainPolicy(batch_size=1, max_age=timedelta(seconds=60))
    return Drainer(queue, sink, policy, lock_wait_seconds=wait)


def test_two_locks_on_one_file_exclude_each_other_and_the_file_is_private(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.lock"
    first, second = FileLock(path), FileLock(path)
    assert first.acquire()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_a_waiting_acquire_gets_the_lock_once_the_holder_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = FileLock(path)
    assert holder.acquire()
    threading.Timer(0.3, holder.release).start()
    started = time.monotonic()
    waiter = FileLock(path)
    assert waiter.acquire(wait_seconds=10)
    assert 0.25 <= time.monotonic() - started < 5
    waiter.release()


def test_the_wait_is_bounded_under_a_frozen_clock(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = FileLock(path)
    assert holder.acquire()
    with freeze_time("2026-11-25 12:00:00"):
        assert not FileLock(path).acquire(wait_seconds=0.1)
    holder.release()


def test_another_process_holding_the_lock_keeps_it_until_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    lock = FileLock(path)
    with held_by_another_process(path) as holder:
        assert not lock.acquire(wait_seconds=0.1)
        holder.kill()  # SIGKILL: the kernel releases the flock
        holder.wait(30)
        assert lock.acquire(wait_seconds=5)
    lock.release()


def test_a_drain_cycle_holds_the_lock_while_it_writes(spool_db: SpoolDatabase) -> None:
    queue = DurableQueue(spool_db, "outbox")
    queue.append("a", b"x")
    sink = LockProbingSink(drain_lock(spool_db).path)
    report = drainer(queue, sink).drain_once(force=True)
    assert report.outcome is Outcome.WRITTEN
    assert sink.lock_was_free == [False]
    assert drain_lock(spool_db).acquire()  # and lets it go after the cycle


def test_a_drain_cycle_is_skipped_while_another_process_holds_the_lock(
    spool_db: SpoolDatabase,
) -> None:
    queue = DurableQueue(spool_db, "outbox")
    queue.append("a", b"x")
    sink = LockProbingSink(drain_lock(spool_db).path)
    drain = drainer(queue, sink, wait=0.1)
    with held_by_another_process(drain.lock.path):
        report = drain.drain_once(force=True)
        assert report.outcome is Outcome.LOCKED
        assert sink.attempts == 0
        assert sink.records == []
        assert queue.stats().pending == 1
    assert drain.drain_once(force=True).outcome is Outcome.WRITTEN
    assert queue.stats().pending == 0
