"""The dispatcher role in a process of its own, beside intake and the drain, sharing the spool.

One core cannot do intake and dispatch at 500 events/s (about 2.3 ms of CPU per event), and
every POST in intake's process shows up in intake's latency. So `relay serve` starts `relay
dispatcher` as a child (`supervisor.py`: lifetime, restarts, stop). Wake-ups (`wakeup.py`):
intake writes a byte to a pipe per accepted event, and the child looks for due deliveries at
once (it still polls every second, so a lost byte costs at most that); EOF on that pipe means
intake's process is gone: the child stops. The child writes a byte to the drain's pipe when
an outcome completes a company's batch of log rows. Without pipes or a parent (`relay
dispatcher` as a unit of its own) it polls, and lives as long as its supervisor says.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta
from functools import partial
from pathlib import Path

from relay.delivery.worker import DeliveryWorker, DispatcherBusyError
from relay.errors import StartupError
from relay.inbox.store import EventInbox
from relay.registry.cache import Registry
from relay.runtime.heap import freeze_startup_heap
from relay.runtime.recovery_role import RecoveryRole
from relay.runtime.supervisor import ChildProcess, become_child
from relay.runtime.wakeup import send_wake
from relay.runtime.wiring import fresh_registry, open_database, open_spool, stop_on_loop_signals
from relay.settings import RelaySettings
from spool import DurableQueue, wake_on_full_batches

log = logging.getLogger(__name__)


def delivery_worker(
    settings: RelaySettings,
    inbox: EventInbox,
    outbox: DurableQueue,
    registry: Registry,
    *,
    drain_wake_fd: int | None,
) -> DeliveryWorker:
    """The dispatcher role's worker; it wakes the drain (through the pipe's `drain_wake_fd`)
    when an outcome's log row completes a company's batch."""
    worker = DeliveryWorker(settings, inbox, outbox, registry)
    if drain_wake_fd is not None:
        wake_on_full_batches(outbox, settings.batch_size, partial(send_wake, drain_wake_fd))
    return worker


def dispatcher_child(
    settings: RelaySettings, *, metrics_directory: Path, wake_fd: int, drain_wake_fd: int
) -> ChildProcess:
    """Parent side: `relay dispatcher` as a supervised child, with the read end of intake's
    wake-up pipe (`wake_fd`) and the write end of the drain's (`drain_wake_fd`)."""
    return ChildProcess(
        "dispatcher",
        ["dispatcher", "--wake-fd", str(wake_fd), "--drain-wake-fd", str(drain_wake_fd)],
        metrics_directory=metrics_directory,
        stop_deadline=settings.shutdown_grace_seconds,
        pass_fds=(wake_fd, drain_wake_fd),
    )


def run_dispatcher(
    settings: RelaySettings,
    *,
    wake_fd: int | None = None,
    drain_wake_fd: int | None = None,
    parent_pid: int | None = None,
) -> None:
    """`relay dispatcher`: deliver until SIGTERM/SIGINT, or until intake's pipe (`wake_fd`)
    ends.

    As `relay serve`'s child (`parent_pid`) it dies with its parent, yields the CPU, and
    skips the integrity check that intake's process made a moment ago.
    """
    if parent_pid is not None:
        become_child(parent_pid, settings.background_nice)
    try:
        asyncio.run(
            _serve_deliveries(settings, wake_fd, drain_wake_fd, check_integrity=parent_pid is None)
        )
    except DispatcherBusyError as exc:
        raise StartupError(str(exc)) from exc


async def _serve_deliveries(
    settings: RelaySettings,
    wake_fd: int | None,
    drain_wake_fd: int | None,
    *,
    check_integrity: bool,
) -> None:
    spool, outbox = open_spool(settings, check_integrity=check_integrity)
    engine = open_database(settings)
    try:
        inbox = EventInbox(spool, idempotency_window=timedelta(hours=settings.idempotency_hours))
        registry = Registry(engine)
        worker = delivery_worker(settings, inbox, outbox, registry, drain_wake_fd=drain_wake_fd)
        stop = stop_on_loop_signals()
        loop = asyncio.get_running_loop()
        if wake_fd is not None:
            loop.add_reader(wake_fd, _on_wake_bytes, wake_fd, worker, stop)
        async with fresh_registry(registry, settings):
            await worker.start()
            recovery = RecoveryRole(engine, inbox, outbox)
            await recovery.start()
            log.info("dispatcher running (pid %d)", os.getpid())
            freeze_startup_heap("dispatcher")
            await stop.wait()
            if wake_fd is not None:
                loop.remove_reader(wake_fd)
            await recovery.stop()
            await worker.stop()
    finally:
        spool.close()
        engine.dispose()


def _on_wake_bytes(fd: int, worker: DeliveryWorker, stop: asyncio.Event) -> None:
    if os.read(fd, 65536):
        worker.wake()
    else:  # end of file: the parent is gone
        log.warning("the relay's intake process is gone: stopping")
        stop.set()
