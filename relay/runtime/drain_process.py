"""The drain role: the scheduled drain of the execution log into the database, its metrics,
the log's upkeep (database probe, daily retention) and the dispatcher's wake-ups.

One `DrainRole` runs wherever the drain runs: in `relay drain` (a child of `relay serve`, or a
unit of its own), and in a thread of the in-process relay (`relay demo`, the tests), so what
the tests see is what production does.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from relay.db.engine import display_url
from relay.execution_log.upkeep import PROBE_SECONDS, LogMaintenance
from relay.ops.metrics import DrainMetrics
from relay.runtime.heap import freeze_startup_heap
from relay.runtime.supervisor import ChildProcess, become_child
from relay.runtime.wakeup import WakeListener
from relay.runtime.wiring import open_execution_log
from relay.settings import RelaySettings
from spool import DrainScheduler, FlushReport, utc_now

log = logging.getLogger(__name__)


class DrainRole:
    """Drains on schedule, and at once when the dispatcher says a company's batch is full.

    Leftovers of an earlier run drain at start; `stop` flushes within the shutdown deadline
    and leaves what it cannot write in the spool for the next start. Meanwhile `keep_up`
    probes a database the drain is backing off from and runs the daily retention job.
    `wake_fd`: the read end of the dispatcher's wake-up pipe (none: the drain only polls);
    once its writers are all gone, the relay is gone and the role stops.
    """

    def __init__(
        self,
        settings: RelaySettings,
        stopping: threading.Event,
        *,
        wake_fd: int | None = None,
        check_integrity: bool = True,
    ) -> None:
        self._settings = settings
        self.stopping = stopping
        self._execution = open_execution_log(settings, check_integrity=check_integrity)
        self.scheduler = DrainScheduler(
            self._execution.drainer,
            interval_seconds=settings.drain_interval_seconds,
            on_cycle=DrainMetrics().record,
        )
        self._maintenance = LogMaintenance(
            self.scheduler,
            self._execution.engine,
            retention_days=settings.retention_days,
            now=utc_now(),
        )
        self._listener = (
            None if wake_fd is None else WakeListener(wake_fd, self.scheduler.wake, self._orphaned)
        )

    def start(self) -> None:
        self.scheduler.start()
        if self._listener is not None:
            self._listener.start()
        log.info(
            "drain running: spool %s -> %s, every %.1f s%s",
            self._settings.spool_path,
            display_url(self._execution.engine.url),
            self._settings.drain_interval_seconds,
            " and when the dispatcher fills a batch" if self._listener is not None else "",
        )

    def keep_up(self) -> None:
        """The log's upkeep every `PROBE_SECONDS`, until `stopping` is set."""
        while not self.stopping.wait(PROBE_SECONDS):
            self._maintenance.tick(utc_now())

    def stop(self) -> FlushReport:
        """Stop the drain job, flush what is pending within the shutdown deadline, close."""
        self.stopping.set()
        if self._listener is not None:
            self._listener.stop()
        try:
            flush = self.scheduler.shutdown(self._settings.shutdown_flush_seconds)
        finally:
            self._execution.close()
        log.info(
            "drain stopped: execution log flushed %d rows, %d stay in the spool",
            flush.rows_written,
            flush.rows_left,
        )
        return flush

    def _orphaned(self) -> None:
        log.warning("the relay's intake process is gone: stopping")
        self.stopping.set()


def drain_child(settings: RelaySettings, *, metrics_directory: Path, wake_fd: int) -> ChildProcess:
    """Parent side: `relay drain` as a supervised child, woken through the pipe's `wake_fd`."""
    return ChildProcess(
        "drain",
        ["drain", "--wake-fd", str(wake_fd)],
        metrics_directory=metrics_directory,
        stop_deadline=settings.shutdown_flush_seconds,
        pass_fds=(wake_fd,),
    )


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (install from the main thread)."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def run_drain(
    settings: RelaySettings,
    stop: threading.Event,
    *,
    wake_fd: int | None = None,
    parent_pid: int | None = None,
) -> FlushReport:
    """`relay drain`: the drain role until `stop` is set, then its flush.

    As `relay serve`'s child (`parent_pid`) it dies with its parent, yields the CPU, and
    skips the integrity check that intake's process made a moment ago; on its own (a unit
    of its own) it checks the spool and lives as long as its supervisor says.
    """
    if parent_pid is not None:
        become_child(parent_pid, settings.drain_nice)
    role = DrainRole(settings, stop, wake_fd=wake_fd, check_integrity=parent_pid is None)
    role.start()
    freeze_startup_heap("drain")
    role.keep_up()
    return role.stop()
