"""An in-memory `spool.Sink` for tests of code built on the spool.

It ships with the library, as dramatiq ships its stub broker and procrastinate its in-memory
connector, so every user tests against the same double. It keeps a real sink's contract
(tests/support/sink_contract.py runs the same tests on it and on the relay's sink): a record
written twice is stored once, a batch is stored whole or not at all, and failures come as the
classified `SinkError`s the drain acts on. A test arms the failures it needs (an outage for
the next N writes, a record refused by name or anonymously, a misconfiguration) and reads
back what the sink holds.

Import it as `from spool.testing import InMemorySink`; `spool/__init__` does not, so
production code never loads it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from spool.errors import ConfigSinkError, RecordSinkError, TransientSinkError
from spool.queue import SpoolRecord


class InMemorySink:
    """Implements `spool.Sink` in memory; safe to share with a drain running in a thread.

    A record id written again keeps its first copy, as `INSERT ... ON CONFLICT DO NOTHING`
    would. `attempts` counts every call of `write`, failed ones included.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stored: dict[str, SpoolRecord] = {}
        self._transient_failures = 0
        self._misconfigured: str | None = None
        self._refused_by_name: dict[str, str] = {}
        self._refused_unnamed: dict[str, str] = {}
        self.attempts = 0

    def write(self, records: Sequence[SpoolRecord]) -> None:
        """Store every record of the batch, or none and raise a classified `SinkError`.

        Checked in the order a database fails: the connection (transient), then the
        destination (configuration), then the rows (records).
        """
        with self._lock:
            self.attempts += 1
            if self._transient_failures:
                self._transient_failures -= 1
                raise TransientSinkError("in-memory sink unavailable (armed by the test)")
            if self._misconfigured is not None:
                raise ConfigSinkError(self._misconfigured)
            named = {
                r.id: self._refused_by_name[r.id] for r in records if r.id in self._refused_by_name
            }
            if named:
                raise RecordSinkError(f"{len(named)} records refused", named)
            unnamed = [
                self._refused_unnamed[r.id] for r in records if r.id in self._refused_unnamed
            ]
            if unnamed:  # as a database refusing the statement without saying which row
                raise RecordSinkError(f"batch refused: {unnamed[0]}")
            for record in records:
                self._stored.setdefault(record.id, record)

    def fail_next(self, writes: int = 1) -> None:
        """Make the next `writes` writes raise `TransientSinkError`, as an outage would;
        0 ends an outage armed earlier."""
        with self._lock:
            self._transient_failures = writes

    def misconfigure(
        self, reason: str = "in-memory sink misconfigured (armed by the test)"
    ) -> None:
        """Make every write raise `ConfigSinkError(reason)` until `repair()`."""
        with self._lock:
            self._misconfigured = reason

    def repair(self) -> None:
        """Undo `misconfigure()`: the operator fixed the destination."""
        with self._lock:
            self._misconfigured = None

    def refuse(
        self, record_id: str, reason: str = "refused by the test", *, named: bool = True
    ) -> None:
        """Refuse every batch holding `record_id`. Named, the `RecordSinkError` names it, as
        a sink's own validation does; unnamed, it names nothing, as a database refusing the
        statement does, and the drain must bisect the batch to find it."""
        with self._lock:
            (self._refused_by_name if named else self._refused_unnamed)[record_id] = reason

    @property
    def records(self) -> list[SpoolRecord]:
        """The stored records, each once, in the order first written."""
        with self._lock:
            return list(self._stored.values())
