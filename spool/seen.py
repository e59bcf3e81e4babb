"""Keys remembered for a time window, with a value: what makes intake idempotent.

A caller that retries a request with the same id gets the first answer back instead of a
second copy of the work, as long as the retry comes within the window.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from spool.clock import to_micros
from spool.database import SpoolDatabase
from spool.queue import validate_queue_name


class SeenKeys:
    """(scope, key) -> value, forgotten `ttl` after it was first seen."""

    def __init__(self, db: SpoolDatabase, name: str, *, ttl: timedelta) -> None:
        validate_queue_name(name)
        self.db = db
        self.ttl = ttl
        self._table = f"{name}_seen"
        with db.schema_transaction() as conn:
            conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {self._table} (
                    scope TEXT NOT NULL,
                    key TEXT NOT NULL,
                    seen_at INTEGER NOT NULL,
                    value BLOB NOT NULL,
                    PRIMARY KEY (scope, key)) WITHOUT ROWID"""
            )
            conn.execute(f"CREATE INDEX IF NOT EXISTS {self._table}_age ON {self._table} (seen_at)")

    def lookup_in(
        self, conn: sqlite3.Connection, scope: str, key: str, now: datetime
    ) -> bytes | None:
        """The value remembered for (scope, key) within the window, else None."""
        row = conn.execute(
            f"SELECT value FROM {self._table} WHERE scope = ? AND key = ? AND seen_at > ?",
            (scope, key, to_micros(now - self.ttl)),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def remember_in(
        self, conn: sqlite3.Connection, scope: str, key: str, value: bytes, now: datetime
    ) -> None:
        """Remember (scope, key) from `now` on, replacing an expired entry."""
        conn.execute(
            f"""INSERT OR REPLACE INTO {self._table} (scope, key, seen_at, value)
                VALUES (?, ?, ?, ?)""",
            (scope, key, to_micros(now), value),
        )

    def expire(self, now: datetime) -> int:
        """Forget entries older than the window; return how many."""
        cutoff = to_micros(now - self.ttl)
        return self.db.write(
            lambda conn: (
                conn.execute(f"DELETE FROM {self._table} WHERE seen_at <= ?", (cutoff,)).rowcount
            )
        )
