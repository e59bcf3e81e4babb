"""The dispatcher in a process of its own, beside intake, sharing the spool file.

One core cannot do intake and dispatch at 500 events/s (about 2.3 ms of CPU per event), and
every POST or drain in intake's process shows up in intake's latency. So `relay serve`
starts `relay dispatcher` as a child:

- Wake-ups: intake writes a byte to a pipe per accepted event; the child reads the other end
  and looks for due deliveries at once (and still polls every second, so a lost byte costs
  at most that).
- Lifetime: the child dies with its parent (SIGKILL via PR_SET_PDEATHSIG on Linux; EOF on the
  pipe elsewhere) and the parent starts it again, with a backoff, if it crashes (exit status
  not 0). Exit 0 means it was told to stop (systemd and Ctrl-C signal the whole group): not
  restarted, and `/readyz` says so.
- Stop: the parent sends SIGTERM and waits for the child's grace period and flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import random
import signal
import sys
from datetime import timedelta
from pathlib import Path

import anyio.to_thread

from relay.cli_support import CommandError
from relay.components import open_database, open_spool
from relay.delivery_worker import DeliveryWorker, DispatcherBusyError
from relay.inbox import EventInbox
from relay.metrics import child_environment
from relay.registry import Registry, keep_fresh
from relay.settings import RelaySettings
from spool import Backoff

log = logging.getLogger(__name__)

RESTART_BACKOFF = Backoff(initial=timedelta(seconds=0.5), maximum=timedelta(seconds=30))
# A child that ran this long before exiting was healthy: its next restart is immediate.
STABLE_RUN_SECONDS = 60.0
STOP_MARGIN_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


class DispatcherProcess:
    """Parent side: start `relay dispatcher`, wake it, restart it, stop it."""

    def __init__(self, settings: RelaySettings, *, metrics_directory: Path) -> None:
        self._environment = child_environment(metrics_directory)
        self._stop_timeout = (
            settings.shutdown_grace_seconds + settings.shutdown_flush_seconds + STOP_MARGIN_SECONDS
        )
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self.starts = 0

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    def wake(self) -> None:
        """An event was accepted. Never blocks: with the pipe full, wake-ups are pending."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_fd, b"\1")

    async def start(self) -> None:
        """Start the child (from the event loop's thread: PR_SET_PDEATHSIG is tied to the
        thread that forks) and keep it running."""
        self._process = await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="dispatcher-process")

    async def stop(self) -> None:
        """SIGTERM the child and wait for its own orderly stop; SIGKILL it past the deadline
        (its unfinished deliveries stay in the inbox)."""
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self._stop_timeout)
            except TimeoutError:
                log.error("dispatcher did not stop in %.0f s: killing it", self._stop_timeout)
                process.kill()
                await process.wait()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        os.close(self._write_fd)
        os.close(self._read_fd)

    async def _spawn(self) -> asyncio.subprocess.Process:
        command = [sys.executable, "-m", "relay.cli"]
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            command.append("--verbose")
        command += ["dispatcher", "--wake-fd", str(self._read_fd), "--parent-pid", str(os.getpid())]
        process = await asyncio.create_subprocess_exec(
            *command, pass_fds=(self._read_fd,), env=self._environment
        )
        self.starts += 1
        log.info("dispatcher process started (pid %d)", process.pid)
        return process

    async def _supervise(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        while self._process is not None:
            started = loop.time()
            code = await self._process.wait()
            if self._stopping:
                return
            if code == 0:  # it was told to stop: a signal to the whole process group
                log.warning("dispatcher process stopped (exit 0); deliveries wait for a restart")
                return
            failures = 1 if loop.time() - started >= STABLE_RUN_SECONDS else failures + 1
            delay = RESTART_BACKOFF.delay(failures, random.random()).total_seconds()
            log.error(
                "dispatcher process exited unexpectedly (code %s); starting it again in %.1f s",
                code,
                delay,
            )
            await asyncio.sleep(delay)
            if self._stopping:
                return
            self._process = await self._spawn()


def run_dispatcher(settings: RelaySettings, *, wake_fd: int, parent_pid: int) -> None:
    """Child side (`relay dispatcher`): deliver and drain until SIGTERM or the parent's end."""
    _die_with_parent(parent_pid)
    try:
        asyncio.run(_serve_deliveries(settings, wake_fd))
    except DispatcherBusyError as exc:
        raise CommandError(str(exc)) from exc


def _die_with_parent(parent_pid: int) -> None:
    """A SIGKILLed relay must not leave a dispatcher behind, POSTing beside its successor."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        raise SystemExit(1)


async def _serve_deliveries(settings: RelaySettings, wake_fd: int) -> None:
    # Intake opened (and checked) the spool a moment ago: skip the second full read.
    spool, outbox = open_spool(settings, check_integrity=False)
    engine = open_database(settings)
    try:
        inbox = EventInbox(spool, idempotency_window=timedelta(hours=settings.idempotency_hours))
        registry = Registry(engine)
        worker = DeliveryWorker(settings, inbox, outbox, engine, registry)
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
                on_database_answer=worker.database_answered,
            )
        )
        await worker.start()
        log.info("dispatcher running (pid %d)", os.getpid())
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
