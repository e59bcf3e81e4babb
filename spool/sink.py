"""The sink interface: where drained records go (PostgreSQL in the relay)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from spool.queue import SpoolRecord


class Sink(Protocol):
    """Writes a batch in ONE transaction, idempotently by record id.

    `write` either commits every record or none. It must be idempotent (records already
    written are skipped), because a crash between the sink's commit and the spool's delete
    makes the same records arrive again. Errors are raised as `spool.errors.SinkError`
    subclasses: transient, record, or configuration.
    """

    def write(self, records: Sequence[SpoolRecord]) -> None: ...
