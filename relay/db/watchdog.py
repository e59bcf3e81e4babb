"""A bound on how long a database connection may stay checked out, enforced from outside.

The server's `statement_timeout` cannot fire for a query that never reached it, and TCP
gives up on a silent peer only when data goes unacknowledged: a proxy or pooler that
accepted the bytes and went quiet (or a local TCP proxy in the fault tests) would hang the
drain, the registry check or the probe for good. So every checkout of a PostgreSQL
connection is armed here; past its deadline the connection's socket is shut down, the
blocked call fails as a lost connection (a transient error: retried, pool invalidated), and
the work is tried again on a fresh connection.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from typing import Any

from sqlalchemy import Engine, event


class ConnectionWatchdog:
    """One daemon thread watching the deadlines of all checked-out connections."""

    def __init__(self, limit_seconds: float) -> None:
        self.limit_seconds = limit_seconds
        self._armed: dict[int, tuple[float, int]] = {}  # checkout id -> (deadline, socket fd)
        self._condition = threading.Condition()
        self._next_id = 0
        self.shut_down = 0  # connections cut so far (for logs and tests)
        threading.Thread(target=self._watch, name="db-watchdog", daemon=True).start()

    @property
    def armed(self) -> int:
        """Checkouts being watched now (for logs and tests)."""
        with self._condition:
            return len(self._armed)

    def watch(self, engine: Engine) -> None:
        """Arm at every checkout; disarm at checkin, and as soon as the connection is
        invalidated or closed: its socket is closed then, and the descriptor number may be
        handed to the next socket opened (a checkout whose listener raised
        `DisconnectionError` reconnects on the same record, at once), which the deadline
        would otherwise shut down."""
        event.listen(engine, "checkout", self._on_checkout)
        event.listen(engine, "checkin", self._disarm)
        event.listen(engine, "invalidate", self._disarm)
        event.listen(engine, "close", self._disarm)

    def _on_checkout(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        with self._condition:
            self._next_id += 1
            record.info["watchdog_id"] = self._next_id
            deadline = time.monotonic() + self.limit_seconds
            self._armed[self._next_id] = (deadline, dbapi_connection.pgconn.socket)
            self._condition.notify()

    def _disarm(self, _dbapi_connection: Any, record: Any, _error: Any = None) -> None:
        with self._condition:
            self._armed.pop(record.info.pop("watchdog_id", 0), None)

    def _watch(self) -> None:
        with self._condition:
            while True:
                now = time.monotonic()
                for key, (deadline, fd) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[key]
                        self.shut_down += 1
                        _shut_down(fd)
                soonest = min((deadline for deadline, _ in self._armed.values()), default=None)
                self._condition.wait(None if soonest is None else max(0.0, soonest - now))


def _shut_down(fd: int) -> None:
    """Shut the socket down (not close: the fd stays the driver's), waking its reader."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(fd))
        with sock:
            sock.shutdown(socket.SHUT_RDWR)
