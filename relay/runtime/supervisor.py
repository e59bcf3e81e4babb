"""Child processes of `relay serve`: started, watched, restarted and stopped by intake's
process, and tied to its lifetime.

- A child dies with its parent: SIGKILL via PR_SET_PDEATHSIG on Linux, so a SIGKILLed relay
  leaves nothing behind that POSTs or drains beside its successor.
- A child that crashes (exit status not 0) is started again after a backoff. Exit 0 means
  it was told to stop (systemd and Ctrl-C signal the whole group): not restarted, and
  `/readyz` says so.
- Stop: SIGTERM, then wait for the child's own orderly stop; SIGKILL past the deadline.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import random
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from relay.ops.metrics import child_environment
from spool import Backoff

log = logging.getLogger(__name__)

RESTART_BACKOFF = Backoff(initial=timedelta(seconds=0.5), maximum=timedelta(seconds=30))
# A child that ran this long before exiting was healthy: its next restart is immediate.
STABLE_RUN_SECONDS = 60.0
# Beyond the child's own stop deadline (grace or flush), time to exit before SIGKILL.
STOP_MARGIN_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


class ChildProcess:
    """Parent side of one `relay ...` child command. `stop_deadline`: how long the child's
    own orderly stop may take (its grace period or flush)."""

    def __init__(
        self,
        name: str,
        arguments: Sequence[str],
        *,
        metrics_directory: Path,
        stop_deadline: float,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.name = name
        self._arguments = list(arguments)
        self._environment = child_environment(metrics_directory)
        self._stop_timeout = stop_deadline + STOP_MARGIN_SECONDS
        self._pass_fds = tuple(pass_fds)
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        """The running child's pid; None while it is down."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self) -> None:
        """Start the child and keep it running. Call from the event loop's thread:
        PR_SET_PDEATHSIG fires when the thread that forked ends, not only the process."""
        self._process = await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"{self.name}-process")

    async def stop(self) -> None:
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self._stop_timeout)
            except TimeoutError:
                log.error("%s did not stop in %.0f s: killing it", self.name, self._stop_timeout)
                process.kill()
                await process.wait()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)

    async def _spawn(self) -> asyncio.subprocess.Process:
        command = [sys.executable, "-m", "relay.cli"]
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            command.append("--verbose")
        command += [*self._arguments, "--parent-pid", str(os.getpid())]
        process = await asyncio.create_subprocess_exec(
            *command, pass_fds=self._pass_fds, env=self._environment
        )
        log.info("%s process started (pid %d)", self.name, process.pid)
        return process

    async def _supervise(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        while self._process is not None:
            started = loop.time()
            code = await self._process.wait()
            if self._stopping:
                return
            if code == 0:  # told to stop: a signal to the whole process group
                log.info("%s process stopped when told to (exit 0); not started again", self.name)
                return
            failures = 1 if loop.time() - started >= STABLE_RUN_SECONDS else failures + 1
            delay = RESTART_BACKOFF.delay(failures, random.random()).total_seconds()
            log.error(
                "%s process exited unexpectedly (code %s); starting it again in %.1f s",
                self.name,
                code,
                delay,
            )
            await asyncio.sleep(delay)
            if self._stopping:
                return
            self._process = await self._spawn()


def become_child(parent_pid: int, nice: int) -> None:
    """Child side, first thing: die with the parent, and yield the CPU to intake.

    A client waits on every intake request; deliveries and log rows wait in a durable spool.
    When the CPU is short, intake goes first (measured: intake p99 at 500 events/s 12-20 ms
    with the dispatcher at nice 0, 8-13 ms at nice 10), then the dispatcher, then the drain
    (nice 19 against 10: burst throughput with logging on / off 0.94-0.95 against 0.91 in
    interleaved runs, before intake's batching made the rest cheaper); the children still
    get every idle cycle, and Linux shares a busy CPU in proportion, so none of them starves.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        raise SystemExit(1)
    os.nice(nice)
