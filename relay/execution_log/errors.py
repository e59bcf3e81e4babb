"""Translate database errors into the spool's sink errors, by SQLSTATE rather than class.

Transient (08 connection, 40 rollback, 53300 too many connections, 57P0x shutdown, 57014
statement timeout, and connection loss) are retried with backoff; record errors (22 data, 23
integrity, client-side data errors such as a NUL byte) are bisected into dead letters;
configuration errors (28 auth, 42 syntax/undefined table, 3D unknown database) need an operator.
Anything unknown is treated as transient: keeping a row in the spool is always safe.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy import exc as sa_exc

from spool import ConfigSinkError, RecordSinkError, SinkError, TransientSinkError

_TRANSIENT_CLASSES = ("08", "40", "53")
_TRANSIENT_CODES = ("53300", "57P01", "57P02", "57P03", "57P04", "57P05", "57014", "55P03")
_RECORD_CLASSES = ("22", "23")
_CONFIG_CLASSES = ("28", "42", "3D", "3F")


def classify(error: BaseException) -> SinkError:
    """Return the sink error that says what the drain should do about `error`."""
    original: BaseException = error
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        original = error.orig
    message = _one_line(original)
    if isinstance(original, psycopg.Error):
        return _classify_psycopg(original, message)
    if isinstance(original, sqlite3.Error):
        return _classify_sqlite(original, message)
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return TransientSinkError(f"connection lost: {message}")
    if isinstance(error, (sa_exc.TimeoutError, sa_exc.DisconnectionError, OSError)):
        return TransientSinkError(message)
    return TransientSinkError(f"unexpected database error: {message}")


def _classify_psycopg(error: psycopg.Error, message: str) -> SinkError:
    state = error.sqlstate
    if state is None:
        # Raised by the client before the server saw it: bad data, or a lost connection.
        if isinstance(error, psycopg.DataError):
            return RecordSinkError(message)
        return TransientSinkError(f"connection problem: {message}")
    detail = f"[{state}] {message}"
    if state in _TRANSIENT_CODES or state[:2] in _TRANSIENT_CLASSES:
        return TransientSinkError(detail)
    if state[:2] in _RECORD_CLASSES:
        return RecordSinkError(detail)
    if state[:2] in _CONFIG_CLASSES:
        return ConfigSinkError(detail)
    return TransientSinkError(detail)


def _classify_sqlite(error: sqlite3.Error, message: str) -> SinkError:
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(error, (sqlite3.IntegrityError, sqlite3.DataError)):
        return RecordSinkError(message)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL):
        return TransientSinkError(message)
    if "no such table" in message or "no such column" in message:
        return ConfigSinkError(message)
    return TransientSinkError(message)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
