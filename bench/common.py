"""Helpers shared by the measurements: scratch dirs, filling a spool, draining it to empty."""

from __future__ import annotations

import random
import shutil
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path

from bench.data import SpoolInput
from spool import Clock, Drainer, DurableQueue, Outcome, SpoolDatabase, utc_now

OUT_DIR = Path(__file__).resolve().parent / "out"
QUEUE = "outbox"
FILL_CHUNK = 10_000


class Scratch:
    """Fresh directories under bench/out (git-ignored, on the repository's filesystem)."""

    def __init__(self, root: Path = OUT_DIR) -> None:
        self.root = root / "run"
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        self._n = 0

    def fresh(self, name: str) -> Path:
        self._n += 1
        path = self.root / f"{self._n:02d}-{name}"
        path.mkdir(mode=0o700)  # spools refuse directories others can read
        return path

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def open_spool(path: Path, clock: Clock = utc_now) -> tuple[SpoolDatabase, DurableQueue]:
    db = SpoolDatabase(path, synchronous="FULL")
    return db, DurableQueue(db, QUEUE, clock=clock)


def append_batch(db: SpoolDatabase, queue: DurableQueue, items: Sequence[SpoolInput]) -> None:
    """Append many records in one spool transaction (for filling, not for measuring appends)."""

    def op(conn: sqlite3.Connection) -> None:
        for item in items:
            queue.append_in(
                conn,
                item.key,
                item.payload,
                record_id=item.record_id,
                enqueued_at=item.created_at,
            )

    db.write(op)


def fill_spool(db: SpoolDatabase, queue: DurableQueue, items: Iterable[SpoolInput]) -> int:
    """Fill in big transactions, then checkpoint so the drain starts from a settled file."""
    total = 0
    iterator = iter(items)
    while chunk := list(islice(iterator, FILL_CHUNK)):
        append_batch(db, queue, chunk)
        total += len(chunk)
    db.checkpoint()
    return total


@dataclass(frozen=True)
class DrainTotals:
    rows: int
    transactions: int
    cycles: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def drain_all(drainer: Drainer, expected_rows: int, now: datetime | None = None) -> DrainTotals:
    """Force-drain until idle; bounded by the cycles the backlog can possibly need."""
    cycles_allowed = expected_rows // drainer.policy.max_rows_per_cycle + 10
    rows = transactions = cycles = 0
    started = time.perf_counter()
    for _ in range(cycles_allowed):
        report = drainer.drain_once(now, force=True)
        cycles += 1
        if report.outcome is Outcome.IDLE:
            break
        if report.outcome is not Outcome.WRITTEN:
            raise RuntimeError(f"drain failed: {report.outcome.value}: {report.error}")
        rows += report.rows_written
        transactions += report.transactions
    else:
        raise RuntimeError(f"backlog not drained after {cycles_allowed} cycles")
    return DrainTotals(rows, transactions, cycles, time.perf_counter() - started)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def bootstrap_interval(
    values: Sequence[float],
    statistic: Callable[[Sequence[float]], float] = statistics.median,
    *,
    confidence: float = 0.95,
    rounds: int = 4000,
    seed: int = 7,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over `values` (resampled with
    replacement, a fixed seed so a report can be recomputed from its raw figures).

    Says how far a figure measured on a noisy machine can be trusted: a target is only
    settled when the whole interval is on one side of it.
    """
    if not values:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    estimates = sorted(statistic([rng.choice(values) for _ in values]) for _ in range(rounds))
    tail = (1 - confidence) / 2
    low = estimates[int(tail * (rounds - 1))]
    high = estimates[int((1 - tail) * (rounds - 1))]
    return (low, high)


class PhaseTimer:
    """Seconds spent in each public step of a drain cycle, to show where a drain's time goes.

    Wraps the queue's `backlog`, `fetch` (or `fetch_oldest`) and `remove` and the sink's
    `write` on these instances only (the library is not touched); the wrappers add well
    under 1% to a cycle.
    """

    def __init__(self, queue: DurableQueue, sink: object) -> None:
        self.seconds: dict[str, float] = {}
        for owner, name, label in (
            (queue, "backlog", "spool backlog"),
            (queue, "fetch", "spool fetch"),
            (queue, "fetch_oldest", "spool fetch"),
            (sink, "write", "sink write (decode + PostgreSQL)"),
            (queue, "remove", REMOVE_PHASE),
        ):
            self._wrap(owner, name, label)

    def _wrap(self, owner: object, name: str, label: str) -> None:
        original = getattr(owner, name, None)
        if original is None:  # the library is evolving: time the steps it has
            return
        self.seconds.setdefault(label, 0.0)

        def timed(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started

        setattr(owner, name, timed)

    def describe(self, total_seconds: float) -> str:
        return describe_phases(self.seconds, total_seconds)


REMOVE_PHASE = "spool remove"


def describe_phases(seconds: dict[str, float], total_seconds: float) -> str:
    """'step 1.23 s (45%), ...' for the Details section."""
    if total_seconds <= 0:
        return ""
    return ", ".join(
        f"{label} {spent:.2f} s ({spent / total_seconds:.0%})" for label, spent in seconds.items()
    )
