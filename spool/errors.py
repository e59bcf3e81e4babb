"""Errors the spool raises at its boundary, so callers never see raw sqlite3 exceptions."""

from __future__ import annotations

from collections.abc import Mapping


class SpoolError(Exception):
    """Base class for every error raised by the spool library."""


class SpoolFullError(SpoolError):
    """The spool is past its configured byte bound (or the disk is full).

    Nothing already stored is dropped; the caller should refuse new work (HTTP 503) until the
    drain catches up.
    """


class SpoolCorruptError(SpoolError):
    """The spool file failed its integrity check; it is left untouched for salvage."""


class SpoolPermissionError(SpoolError):
    """The spool file or its directory is open to other users; the spool refuses to open.

    What a spool holds is often personal data: it must stay 0600 in a 0700 directory.
    """


class SinkError(Exception):
    """Base class for errors a sink raises when it could not write a batch.

    Sinks translate their driver's errors into one of the subclasses below, so the drain loop
    decides what to do from the class alone.
    """


class TransientSinkError(SinkError):
    """The destination is temporarily unavailable; retry the same batch later."""


class RecordSinkError(SinkError):
    """Records in the batch are at fault.

    `rejected` maps record ids to reasons when the sink already knows which records are bad
    (its own validation); when it is empty (the database refused the batch without saying
    which row) the drain bisects the batch to find them.
    """

    def __init__(self, message: str, rejected: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.rejected: dict[str, str] = dict(rejected or {})


class ConfigSinkError(SinkError):
    """The destination rejects every write (credentials, missing table): an operator must act."""
