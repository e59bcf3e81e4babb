"""Disk and CPU probes that explain the append ratios on this particular machine.

The spool's advantage over one-commit-per-put comes from sharing fsyncs. How much that buys
depends on what an fsync costs here, so we measure it, and the spool's CPU cost per append
when no fsync is paid (synchronous=NORMAL in WAL mode), which bounds any ratio from above.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import Scratch
from bench.data import SpoolInput
from spool import DurableQueue, SpoolDatabase


@dataclass(frozen=True)
class Probe:
    commit_full_us: float  # one-row WAL commit with synchronous=FULL
    commit_off_us: float  # the same without any sync
    spool_normal_rate: float  # spool appends/s, 1 thread, synchronous=NORMAL (no fsync)

    @property
    def fsync_us(self) -> float:
        return self.commit_full_us - self.commit_off_us


def _commit_latency_us(path: Path, items: Sequence[SpoolInput], synchronous: str) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = wal")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("CREATE TABLE IF NOT EXISTS t (payload BLOB)")
        started = time.perf_counter()
        for item in items:
            conn.execute("INSERT INTO t VALUES (?)", (item.payload,))
        return (time.perf_counter() - started) / len(items) * 1e6
    finally:
        conn.close()


def _spool_normal_rate(path: Path, items: Sequence[SpoolInput]) -> float:
    db = SpoolDatabase(path, synchronous="NORMAL")
    try:
        queue = DurableQueue(db, "outbox")
        started = time.perf_counter()
        for item in items:
            queue.append(item.key, item.payload, record_id=item.record_id)
        return len(items) / (time.perf_counter() - started)
    finally:
        db.close()


def run_probe(scratch: Scratch, items: Sequence[SpoolInput]) -> Probe:
    full = _commit_latency_us(scratch.fresh("probe-full") / "p.db", items, "FULL")
    off = _commit_latency_us(scratch.fresh("probe-off") / "p.db", items, "OFF")
    normal = _spool_normal_rate(scratch.fresh("probe-spool") / "s.db", items)
    return Probe(full, off, normal)
