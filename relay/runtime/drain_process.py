"""The long-running drain (`relay drain`, and `relay serve`'s drain process): the scheduler
job and the log's upkeep until a signal, then a bounded flush."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from relay.db.engine import display_url
from relay.execution_log.upkeep import PROBE_SECONDS, LogMaintenance
from relay.ops.metrics import DrainMetrics
from relay.runtime.heap import freeze_startup_heap
from relay.runtime.wiring import execution_log
from relay.settings import RelaySettings
from spool import DrainScheduler, FlushReport, utc_now

log = logging.getLogger(__name__)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (install from the main thread)."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def run_drain_worker(
    settings: RelaySettings, stop: threading.Event, *, check_integrity: bool = True
) -> FlushReport:
    """Drain on schedule until `stop` is set; then flush within the shutdown deadline.

    Leftovers of an earlier run drain at start; what the flush cannot write stays in the
    spool for the next start. Meanwhile `LogMaintenance` probes a database the drain is
    backing off from, and runs the daily retention job.
    """
    with execution_log(settings, check_integrity=check_integrity) as execution:
        scheduler = DrainScheduler(
            execution.drainer,
            interval_seconds=settings.drain_interval_seconds,
            on_cycle=DrainMetrics().record,
        )
        maintenance = LogMaintenance(
            scheduler, execution.engine, retention_days=settings.retention_days, now=utc_now()
        )
        scheduler.start()
        log.info(
            "drain running: spool %s -> %s, every %.1f s",
            settings.spool_path,
            display_url(execution.engine.url),
            settings.drain_interval_seconds,
        )
        freeze_startup_heap("drain")
        while not stop.wait(PROBE_SECONDS):
            maintenance.tick(utc_now())
        return stop_drain(scheduler, settings)


def stop_drain(scheduler: DrainScheduler, settings: RelaySettings) -> FlushReport:
    """Stop the drain job and flush what is pending within the shutdown deadline."""
    flush = scheduler.shutdown(settings.shutdown_flush_seconds)
    log.info(
        "drain stopped: execution log flushed %d rows, %d stay in the spool",
        flush.rows_written,
        flush.rows_left,
    )
    return flush
