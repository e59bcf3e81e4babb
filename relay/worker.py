"""The long-running drain: the scheduler job until a signal, then a bounded flush."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from relay.components import execution_log
from relay.database import display_url
from relay.settings import RelaySettings
from spool import DrainScheduler, FlushReport

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


def run_drain_worker(settings: RelaySettings, stop: threading.Event) -> FlushReport:
    """Drain on schedule until `stop` is set; then flush within the shutdown deadline.

    Leftovers of an earlier run drain at start; what the flush cannot write stays in the
    spool for the next start.
    """
    with execution_log(settings) as execution:
        scheduler = DrainScheduler(
            execution.drainer, interval_seconds=settings.drain_interval_seconds
        )
        scheduler.start()
        log.info(
            "drain running: spool %s -> %s, every %.1f s",
            settings.spool_path,
            display_url(execution.engine.url),
            settings.drain_interval_seconds,
        )
        stop.wait()
        return scheduler.shutdown(settings.shutdown_flush_seconds)
