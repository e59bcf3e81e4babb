"""The dispatcher in a process of its own, beside intake and the drain, sharing the spool.

One core cannot do intake and dispatch at 500 events/s (about 2.3 ms of CPU per event), and
every POST in intake's process shows up in intake's latency. So `relay serve` starts `relay
dispatcher` as a child (`relay/child_process.py`: lifetime, restarts, stop). Wake-ups: intake
writes a byte to a pipe per accepted event; the child reads the other end and looks for due
deliveries at once (it still polls every second, so a lost byte costs at most that). EOF on
the pipe means intake's process is gone: the child stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from datetime import timedelta
from pathlib import Path

import anyio.to_thread

from relay.delivery.worker import DeliveryWorker, DispatcherBusyError
from relay.errors import StartupError
from relay.inbox.store import EventInbox
from relay.registry.cache import Registry, keep_fresh
from relay.runtime.heap import freeze_startup_heap
from relay.runtime.supervisor import ChildProcess, become_child
from relay.runtime.wiring import open_database, open_spool
from relay.settings import RelaySettings

log = logging.getLogger(__name__)


class DispatcherProcess:
    """Parent side: `relay dispatcher` as a supervised child, and its wake-up pipe."""

    def __init__(self, settings: RelaySettings, *, metrics_directory: Path) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self.child = ChildProcess(
            "dispatcher",
            ["dispatcher", "--wake-fd", str(self._read_fd)],
            metrics_directory=metrics_directory,
            stop_deadline=settings.shutdown_grace_seconds,
            pass_fds=(self._read_fd,),
        )

    def wake(self) -> None:
        """An event was accepted. Never blocks: with the pipe full, wake-ups are pending."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_fd, b"\1")

    async def start(self) -> None:
        await self.child.start()

    async def stop(self) -> None:
        await self.child.stop()
        os.close(self._write_fd)
        os.close(self._read_fd)


def run_dispatcher(settings: RelaySettings, *, wake_fd: int, parent_pid: int) -> None:
    """Child side (`relay dispatcher`): deliver until SIGTERM or the parent's end."""
    become_child(parent_pid, settings.background_nice)
    try:
        asyncio.run(_serve_deliveries(settings, wake_fd))
    except DispatcherBusyError as exc:
        raise StartupError(str(exc)) from exc


async def _serve_deliveries(settings: RelaySettings, wake_fd: int) -> None:
    # Intake opened (and checked) the spool a moment ago: skip the second full read.
    spool, outbox = open_spool(settings, check_integrity=False)
    engine = open_database(settings)
    try:
        inbox = EventInbox(spool, idempotency_window=timedelta(hours=settings.idempotency_hours))
        registry = Registry(engine)
        worker = DeliveryWorker(settings, inbox, outbox, registry)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_reader(wake_fd, _on_wake_bytes, wake_fd, worker, stop)
        await anyio.to_thread.run_sync(registry.refresh)
        refresher = asyncio.create_task(
            keep_fresh(
                registry,
                reload_seconds=settings.registry_refresh_seconds,
                check_seconds=settings.registry_check_seconds,
            )
        )
        await worker.start()
        log.info("dispatcher running (pid %d)", os.getpid())
        freeze_startup_heap("dispatcher")
        await stop.wait()
        loop.remove_reader(wake_fd)
        await worker.stop()
        refresher.cancel()
        await asyncio.gather(refresher, return_exceptions=True)
    finally:
        spool.close()
        engine.dispose()


def _on_wake_bytes(fd: int, worker: DeliveryWorker, stop: asyncio.Event) -> None:
    if os.read(fd, 65536):
        worker.wake()
    else:  # end of file: the parent is gone
        log.warning("the relay's intake process is gone: stopping")
        stop.set()
