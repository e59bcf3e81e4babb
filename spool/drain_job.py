"""Runs the drain as an APScheduler 3 interval job, wakes it early, flushes on shutdown."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from spool.drain import Drainer, DrainReport, Outcome
from spool.errors import SpoolError
from spool.queue import AppendReceipt, DurableQueue

log = logging.getLogger(__name__)

JOB_ID = "spool-drain"


@dataclass(frozen=True)
class FlushReport:
    """What a shutdown flush achieved before its deadline."""

    rows_written: int
    rows_left: int
    timed_out: bool


class DrainScheduler:
    """Owns the background job that calls `Drainer.drain_once`.

    The job runs every `interval_seconds` and once at start (leftovers of an earlier run).
    `coalesce` and `max_instances=1` keep a slow drain from piling up runs; the drainer's own
    sink times out its I/O so a hung database cannot block the job forever.
    """

    def __init__(
        self,
        drainer: Drainer,
        *,
        interval_seconds: float = 1.0,
        max_cycles_per_run: int = 1_000,
        on_cycle: Callable[[DrainReport, float], None] | None = None,
    ) -> None:
        """`on_cycle(report, seconds)` sees every scheduled cycle (metrics, health)."""
        self.drainer = drainer
        self._on_cycle = on_cycle
        self.interval_seconds = interval_seconds
        self.max_cycles_per_run = max_cycles_per_run
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._stopping = threading.Event()
        self.completed_runs = 0  # job runs finished: lets callers see the job is alive

    def start(self) -> None:
        """Start the job; it runs at once, then every interval, and on full batches appended
        through this process's queue (another process's appends wake it through
        `wake_on_full_batches` on its own queue)."""
        wake_on_full_batches(self.drainer.queue, self.drainer.policy.batch_size, self.wake)
        self._scheduler.add_job(
            self.run_due,
            "interval",
            seconds=self.interval_seconds,
            id=JOB_ID,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),  # drain what an earlier run left behind
        )
        self._scheduler.start()

    def wake(self) -> None:
        """Run the drain job now instead of at its next interval."""
        if self._scheduler.running and not self._stopping.is_set():
            self._scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))

    def run_due(self) -> None:
        """The job: drain cycles back to back while more is due, within a bounded count,
        then a checkpoint that blocks no writer, so the WAL (written by every process on the
        spool, not only by the drain) stays short and the space of drained rows is reused."""
        written = 0
        try:
            for _ in range(self.max_cycles_per_run):
                if self._stopping.is_set():
                    break
                started = time.perf_counter()
                report = self.drainer.drain_once()
                if self._on_cycle is not None:
                    self._on_cycle(report, time.perf_counter() - started)
                written += report.rows_written + report.dead_lettered
                if not report.more_due:
                    break
            self.drainer.queue.db.checkpoint(truncate=False)
        except SpoolError:
            log.exception("drain job could not read or update the spool")
        finally:
            self.completed_runs += 1

    def shutdown(self, deadline_seconds: float) -> FlushReport:
        """Stop the job, then flush everything pending until done or the deadline passes.

        What cannot be written stays in the spool for the next start.
        """
        self._stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        return flush(self.drainer, deadline_seconds)


def wake_on_full_batches(queue: DurableQueue, batch_size: int, wake: Callable[[], None]) -> None:
    """Call `wake` once an append through `queue` completes a batch of `batch_size` for its key.

    The drain is due then, and need not wait for its next interval. `wake` may start a drain
    in this process (`DrainScheduler.wake`) or tell one in another process (a pipe).
    """

    def on_append(receipt: AppendReceipt) -> None:
        if receipt.pending % batch_size == 0:
            wake()

    queue.add_append_listener(on_append)


def flush(drainer: Drainer, deadline_seconds: float) -> FlushReport:
    """Force-drain until the queue is empty, a cycle fails, or `deadline_seconds` pass."""
    give_up_at = time.monotonic() + deadline_seconds
    written = 0
    timed_out = False
    while True:
        if time.monotonic() >= give_up_at:
            timed_out = True
            break
        report: DrainReport = drainer.drain_once(force=True)
        written += report.rows_written
        if report.outcome is not Outcome.WRITTEN:
            break
        if not report.rows_written and not report.dead_lettered:
            break
    if written:
        drainer.queue.db.checkpoint()
    left = drainer.queue.stats().pending
    if left:
        log.warning("shutdown flush: %d rows written, %d rows stay in the spool", written, left)
    else:
        log.info("shutdown flush: %d rows written, spool empty", written)
    return FlushReport(rows_written=written, rows_left=left, timed_out=timed_out)
