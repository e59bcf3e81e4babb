"""The benchmark's PostgreSQL: a throwaway fsync=on cluster, and commit/WAL counters.

Commits come from `pg_stat_database.xact_commit` and WAL bytes from `pg_current_wal_lsn()`.
Backends publish their counters lazily (when idle for about a second, or at exit), so every
measured workload closes its connections before the "after" reading, and readings are taken
from one connection that never commits (an open transaction, rolled back at the end) and
polled until the counter stops moving.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from sqlalchemy import Engine

from relay.db.migrations import upgrade
from tests.support.pg_cluster import PgCluster

DBNAME = "bench"
_POLL_SECONDS = 0.25
_STABLE_POLLS = 5  # unchanged for ~1.25 s: past the backends' 1 s idle flush interval
_MAX_POLLS = 80  # never wait more than ~20 s for counters to settle


@dataclass(frozen=True)
class Snapshot:
    commits: int
    lsn: str


@dataclass
class Delta:
    """Commits and WAL bytes between two snapshots (filled when the block exits)."""

    commits: int = 0
    wal_bytes: int = 0


class BenchPostgres:
    """One PostgreSQL cluster for the whole run, with the relay schema migrated into `bench`."""

    def __init__(self, base_dir: Path) -> None:
        self.cluster = PgCluster(base_dir, fsync=True)
        self._reader: psycopg.Connection[tuple[object, ...]] | None = None

    def __enter__(self) -> BenchPostgres:
        try:
            self.cluster.start()
            self.cluster.create_database(DBNAME)
            upgrade(self.cluster.url(DBNAME))
            self._reader = psycopg.connect(self.cluster.conninfo("postgres"))
            # One transaction for all readings: this connection commits nothing itself.
            self._reader.execute("SET LOCAL stats_fetch_consistency = 'none'")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._reader is not None:
            try:
                self._reader.rollback()
                self._reader.close()
            except psycopg.Error:
                pass
            self._reader = None
        self.cluster.destroy()

    @property
    def url(self) -> str:
        return self.cluster.url(DBNAME)

    @property
    def conninfo(self) -> str:
        return self.cluster.conninfo(DBNAME)

    def server_version(self) -> str:
        row = self._read("SELECT version()")
        return str(row).split(" on ")[0]

    def _read(self, query: str, params: tuple[object, ...] = ()) -> object:
        assert self._reader is not None, "BenchPostgres used outside its with-block"
        row = self._reader.execute(query, params).fetchone()
        assert row is not None
        return row[0]

    def reset(self) -> None:
        """Empty the execution log and checkpoint, so each workload starts from equal state.

        The checkpoint matters for WAL bytes: after it, every workload pays the same
        full-page-image cost on the pages it touches first.
        """
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute("TRUNCATE webhook_executions RESTART IDENTITY")
            conn.execute("CHECKPOINT")

    def connect(self) -> psycopg.Connection[Any]:
        """A raw connection to the bench database whose startup is already accounted for."""
        conn = psycopg.connect(self.conninfo)
        publish_stats(conn)
        return conn

    def row_count(self) -> int:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM webhook_executions").fetchone()
        assert row is not None
        return int(row[0])

    def snapshot(self) -> Snapshot:
        """Commit counter of the bench database once it has settled, and the WAL position."""
        last = -1
        stable = 0
        for _ in range(_MAX_POLLS):
            commits = int(str(self._read(_COMMITS, (DBNAME,))))
            if commits == last:
                stable += 1
                if stable >= _STABLE_POLLS:
                    break
            else:
                last, stable = commits, 0
            time.sleep(_POLL_SECONDS)
        return Snapshot(last, str(self._read("SELECT pg_current_wal_lsn()::text")))

    def wal_bytes(self, before: Snapshot, after: Snapshot) -> int:
        return int(str(self._read("SELECT pg_wal_lsn_diff(%s, %s)", (after.lsn, before.lsn))))

    @contextmanager
    def measure(self) -> Iterator[Delta]:
        """Count commits and WAL of the block; it must close its connections before exiting."""
        before = self.snapshot()
        delta = Delta()
        yield delta
        after = self.snapshot()
        delta.commits = after.commits - before.commits
        delta.wal_bytes = self.wal_bytes(before, after)


def publish_stats(conn: psycopg.Connection[Any]) -> None:
    """Make an open connection publish its pending counters before a "before" snapshot.

    An idle backend may sit on its counters for a long time; `pg_stat_force_next_flush()`
    makes it flush as soon as it is idle again, which the rollback brings about. Without this
    a connection opened before the measurement would add its own commits (its startup counts
    as one) to the measured workload.
    """
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.rollback()


def warm_engine(engine: Engine) -> None:
    """Open the engine's connection outside the measurement (connect, dialect set-up)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
    # Returning the connection to the pool rolls back: the backend goes idle and flushes.


_COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = %s"
