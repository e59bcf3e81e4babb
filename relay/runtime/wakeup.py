"""Wake-up pipes between the relay's roles: intake tells the dispatcher an event was accepted,
the dispatcher tells the drain a company's batch is full.

A byte on a pipe means "look now". Every role also polls on its own, so a byte that does not
fit a full pipe costs nothing (the reader has wake-ups pending already), and a role run with
no pipe at all (a unit of its own under systemd) works the same, only without the early
start. The pipe is made by the process that starts both roles: its ends pass to child
processes (`pass_fds`), or to roles in this process (`relay demo`, the tests), the same way.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Callable

# A writer finds the pipe full (wake-ups already pending) or its reader gone (the reading
# process stopped; it polls anyway when it starts again): either way there is nothing to do.
_UNDELIVERABLE = (BlockingIOError, BrokenPipeError)


class WakePipe:
    """One pipe of wake-ups; the write end never blocks."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.write_fd, False)

    def wake(self) -> None:
        send_wake(self.write_fd)

    def close(self) -> None:
        os.close(self.write_fd)
        os.close(self.read_fd)


def send_wake(fd: int) -> None:
    """Write one wake-up byte to `fd` without blocking (safe from any thread)."""
    with contextlib.suppress(*_UNDELIVERABLE):
        os.write(fd, b"\1")


class WakeListener:
    """Reads a wake-up pipe in a thread of its own: `on_wake()` for what arrives, `on_end()`
    once every writer has closed it (the process that fed it is gone).

    For roles whose loop is not asyncio (the drain). `stop` ends the thread at once, through
    a pipe of its own, whatever the wake-up pipe's writers do.
    """

    def __init__(self, fd: int, on_wake: Callable[[], None], on_end: Callable[[], None]) -> None:
        self._fd = fd
        self._on_wake, self._on_end = on_wake, on_end
        self._stop_read, self._stop_write = os.pipe()
        self._thread = threading.Thread(target=self._listen, name="wake-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        os.write(self._stop_write, b"\1")
        if self._thread.ident is not None:  # started
            self._thread.join()
        os.close(self._stop_write)
        os.close(self._stop_read)

    def _listen(self) -> None:
        while True:
            readable, _, _ = select.select([self._fd, self._stop_read], [], [])
            if self._stop_read in readable:
                return
            if not os.read(self._fd, 65536):
                self._on_end()
                return
            self._on_wake()
