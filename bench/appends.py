"""Measurement 1: durable appends per second, spool versus persist-queue, same durability.

Both sides write WAL-mode SQLite with synchronous=FULL and return only after COMMIT. The
spool group-commits concurrent appends; persist-queue commits each `put` on its own under a
lock. Each run uses fresh files and the same pre-generated records.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from persistqueue import SQLiteAckQueue

from bench.common import Scratch, median, open_spool
from bench.data import SpoolInput


@dataclass(frozen=True)
class AppendRun:
    records_per_second: float
    commits: int | None  # SQLite transactions the spool used (None for persist-queue)


@dataclass(frozen=True)
class AppendComparison:
    threads: int
    records: int
    spool: list[AppendRun]
    baseline: list[AppendRun]

    @property
    def spool_rate(self) -> float:
        return median([run.records_per_second for run in self.spool])

    @property
    def appends_per_commit(self) -> float | None:
        """Records per SQLite transaction in the spool runs (None when not counted)."""
        commits = [run.commits for run in self.spool]
        if not commits or any(not c for c in commits):
            return None
        return self.records * len(commits) / sum(c for c in commits if c)

    @property
    def baseline_rate(self) -> float:
        return median([run.records_per_second for run in self.baseline])


def _run_threads(
    parts: Sequence[Sequence[SpoolInput]], work: Callable[[SpoolInput], object]
) -> float:
    """Start every appender at once (barrier); return seconds until the last one finished."""
    barrier = threading.Barrier(len(parts) + 1)
    errors: list[BaseException] = []

    def worker(part: Sequence[SpoolInput]) -> None:
        barrier.wait()
        try:
            for item in part:
                work(item)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


def _split(items: Sequence[SpoolInput], parts: int) -> list[Sequence[SpoolInput]]:
    return [items[i::parts] for i in range(parts)]


def spool_append(path: Path, items: Sequence[SpoolInput], threads: int) -> AppendRun:
    db, queue = open_spool(path / "spool.db")
    commits_before = db.commits  # group commits: how many appends one fsync carried
    try:
        seconds = _run_threads(
            _split(items, threads),
            lambda item: queue.append(item.key, item.payload, record_id=item.record_id),
        )
        stored = queue.stats().pending
        commits = db.commits - commits_before
    finally:
        db.close()
    if stored != len(items):
        raise RuntimeError(f"spool holds {stored} records, expected {len(items)}")
    return AppendRun(len(items) / seconds, commits)


PQ_SETUP_NOTE: list[str] = []


def pq_connections(queue: SQLiteAckQueue) -> list[sqlite3.Connection]:
    """persist-queue's SQLite connections (putter and getter; one object when shared)."""
    found = [cast(sqlite3.Connection, c) for c in (queue._putter, queue._getter) if c]
    return list({id(c): c for c in found}.values())


def open_persist_queue(path: Path) -> SQLiteAckQueue:
    """persist-queue's ack queue, made as durable as the spool: WAL and synchronous=FULL.

    persist-queue sets `journal_mode=WAL` itself but leaves `synchronous` at the build
    default; we set FULL on both of its connections explicitly (and record what we found).
    """
    queue = SQLiteAckQueue(str(path), multithreading=True, auto_commit=True)
    found = []
    for conn in pq_connections(queue):
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        before = conn.execute("PRAGMA synchronous").fetchone()[0]
        conn.execute("PRAGMA synchronous = FULL")
        after = conn.execute("PRAGMA synchronous").fetchone()[0]
        found.append((mode, before, after))
    if not PQ_SETUP_NOTE:
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        described = "; ".join(
            f"journal_mode={m}, synchronous {names.get(b, b)} -> {names.get(a, a)}"
            for m, b, a in found
        )
        PQ_SETUP_NOTE.append(
            f"persist-queue {len(found)} connection(s) as opened: {described} "
            "(set explicitly with `PRAGMA synchronous = FULL` on each)"
        )
    return queue


def _pq_count(path: Path) -> int:
    conn = sqlite3.connect(path / "data.db")
    try:
        return int(conn.execute("SELECT count(*) FROM ack_queue_default").fetchone()[0])
    finally:
        conn.close()


def persist_queue_put(path: Path, items: Sequence[SpoolInput], threads: int) -> AppendRun:
    queue = open_persist_queue(path)
    try:
        seconds = _run_threads(
            _split(items, threads),
            lambda item: queue.put((item.record_id, item.key, item.payload, item.created_at)),
        )
    finally:
        queue.close()
    stored = _pq_count(path)
    if stored != len(items):
        raise RuntimeError(f"persist-queue holds {stored} records, expected {len(items)}")
    return AppendRun(len(items) / seconds, None)


def compare_appends(
    scratch: Scratch, items: Sequence[SpoolInput], threads: int, repeats: int
) -> AppendComparison:
    """Alternate spool and persist-queue runs so drift (page cache, disk) hits both alike."""
    spool_runs: list[AppendRun] = []
    baseline_runs: list[AppendRun] = []
    for _ in range(repeats):
        spool_runs.append(spool_append(scratch.fresh(f"append-spool-{threads}t"), items, threads))
        baseline_runs.append(
            persist_queue_put(scratch.fresh(f"append-pq-{threads}t"), items, threads)
        )
    return AppendComparison(threads, len(items), spool_runs, baseline_runs)
