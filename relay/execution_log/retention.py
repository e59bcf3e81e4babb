"""Retention of the execution log without a DELETE storm.

On PostgreSQL `webhook_executions` is range-partitioned by UTC month on `created_at`, so
expiring a month is one `DROP TABLE` of its partition: a catalog change that writes tens of
kilobytes of WAL, where a `DELETE` of the same rows writes every row again and leaves the
table to vacuum. A daily job creates the partitions of the next months ahead and drops
those whose whole range is older than the retention. The embedded SQLite default has no
partitions: it deletes the expired rows in bounded batches, one short transaction each.

Creating or dropping a partition locks the whole table (ACCESS EXCLUSIVE) for an instant,
and while the DDL waits for that lock every drain queues behind it: so the job waits at most
`DDL_LOCK_TIMEOUT` and otherwise gives up until its next run (partitions exist two months
ahead, so a busy day costs nothing).

The decisions are a pure function (`plan_retention`) of the time, the retention and the
partitions that exist; `apply_retention` only reads the catalog and executes the plan.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import psycopg
import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from relay.db.engine import is_postgresql
from relay.db.schema import webhook_executions

log = logging.getLogger(__name__)

TABLE = webhook_executions.name
MONTHS_AHEAD = 2  # partitions exist for the current month and the next two
SQLITE_BATCH_ROWS = 5_000  # rows per delete transaction: keeps the sink's waits short
DDL_LOCK_TIMEOUT = "3s"

# Bounds come back through `::timestamptz` in the same session, so the server's DateStyle
# and TimeZone cannot change how they read. MINVALUE/MAXVALUE bounds come back NULL.
_PARTITIONS = f"""
SELECT c.oid::regclass::text,
       substring(b.expr FROM $$FROM \\('([^']*)'\\)$$)::timestamptz,
       substring(b.expr FROM $$TO \\('([^']*)'\\)$$)::timestamptz
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
CROSS JOIN LATERAL pg_get_expr(c.relpartbound, c.oid) AS b(expr)
WHERE i.inhparent = '{TABLE}'::regclass AND b.expr <> 'DEFAULT'
ORDER BY 2 NULLS FIRST"""


class RetentionError(Exception):
    """The database is not in a state retention can work on (e.g. not migrated)."""


class Month(NamedTuple):
    """A calendar month in UTC: the unit of partitioning (a tuple: the sink makes one per
    row, so it must be cheap)."""

    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime) -> Month:
        utc = moment.astimezone(UTC)
        return cls(utc.year, utc.month)

    @classmethod
    def of_text(cls, timestamp: str) -> Month:
        """The month of an ISO-8601 timestamp with an offset (as execution rows carry it)."""
        return cls.of(datetime.fromisoformat(timestamp))

    def plus(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.plus(1).start

    @property
    def partition_name(self) -> str:
        return f"{TABLE}_y{self.year:04d}m{self.month:02d}"

    def create_partition_sql(self) -> str:
        """Idempotent DDL for this month's partition (bounds in UTC, whatever the session's
        TimeZone)."""
        return (
            f"CREATE TABLE IF NOT EXISTS {self.partition_name} PARTITION OF {TABLE} "
            f"FOR VALUES FROM ('{self.start.isoformat()}') TO ('{self.end.isoformat()}')"
        )


@dataclass(frozen=True)
class Partition:
    """An existing partition; `None` bounds are MINVALUE/MAXVALUE (unbounded)."""

    name: str
    start: datetime | None
    end: datetime | None

    def overlaps(self, month: Month) -> bool:
        return (self.start is None or self.start < month.end) and (
            self.end is None or self.end > month.start
        )

    def covers(self, month: Month) -> bool:
        return (self.start is None or self.start <= month.start) and (
            self.end is None or self.end >= month.end
        )


@dataclass(frozen=True)
class RetentionPlan:
    cutoff: datetime  # rows created before this are expired
    create: tuple[Month, ...]
    drop: tuple[Partition, ...]


def plan_retention(
    now: datetime,
    retention_days: int,
    existing: Sequence[Partition],
    months_ahead: int = MONTHS_AHEAD,
) -> RetentionPlan:
    """Which partitions to create and drop at `now`.

    A month is created when no partition overlaps it (so the DDL cannot collide with one an
    operator made); a partition is dropped only when its whole range lies before the cutoff,
    so no row younger than the retention is ever removed. Rows up to a month older than the
    cutoff may stay until their partition expires as a whole.
    """
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    cutoff = now - timedelta(days=retention_days)
    current = Month.of(now)
    wanted = (current.plus(n) for n in range(months_ahead + 1))
    create = tuple(m for m in wanted if not any(p.overlaps(m) for p in existing))
    drop = tuple(p for p in existing if p.end is not None and p.end <= cutoff)
    return RetentionPlan(cutoff, create, drop)


@dataclass(frozen=True)
class RetentionReport:
    """What one retention run did (or, with `dry_run`, would do)."""

    cutoff: datetime
    partitioned: bool  # PostgreSQL: partitions created and dropped; SQLite: rows deleted
    created: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    rows_deleted: int = 0
    dry_run: bool = False

    def summary(self) -> str:
        would = "would " if self.dry_run else ""
        head = f"retention, cutoff {self.cutoff.isoformat(timespec='seconds')}: "
        if not self.partitioned:
            return f"{head}{would}delete {self.rows_deleted} rows created before the cutoff"
        return (
            f"{head}{would}create {len(self.created)} partitions {_names(self.created)}; "
            f"{would}drop {len(self.dropped)} partitions {_names(self.dropped)}"
        )


def _names(names: tuple[str, ...]) -> str:
    return f"[{', '.join(names)}]"


def apply_retention(
    engine: Engine, now: datetime, retention_days: int, *, dry_run: bool = False
) -> RetentionReport:
    """Run the retention job once at `now` (call it daily); logs one line and returns what
    it did. Each DDL or delete batch is its own short transaction."""
    if is_postgresql(engine):
        report = _apply_postgresql(engine, now, retention_days, dry_run)
    else:
        cutoff = now - timedelta(days=retention_days)
        deleted = delete_expired_rows(engine, cutoff, dry_run=dry_run)
        report = RetentionReport(cutoff, False, rows_deleted=deleted, dry_run=dry_run)
    log.info("%s", report.summary())
    return report


def existing_partitions(conn: Connection) -> list[Partition]:
    """The partitions of `webhook_executions` (PostgreSQL), oldest first; a default
    partition is left out: it never expires as a whole."""
    rows = conn.exec_driver_sql(_PARTITIONS).all()
    return [Partition(str(name), start, end) for name, start, end in rows]


def _apply_postgresql(
    engine: Engine, now: datetime, retention_days: int, dry_run: bool
) -> RetentionReport:
    with engine.connect() as conn:
        kind = conn.exec_driver_sql(
            f"SELECT relkind FROM pg_class WHERE oid = to_regclass('{TABLE}')"
        ).scalar()
        if kind != "p":
            raise RetentionError(f"{TABLE} is not partitioned: run `relay migrate` first")
        plan = plan_retention(now, retention_days, existing_partitions(conn))
    if not dry_run:
        for month in plan.create:
            _ddl(engine, month.create_partition_sql())
        for partition in plan.drop:
            _ddl(engine, f"DROP TABLE {partition.name}")  # a quoted regclass name
    return RetentionReport(
        plan.cutoff,
        True,
        created=tuple(m.partition_name for m in plan.create),
        dropped=tuple(p.name for p in plan.drop),
        dry_run=dry_run,
    )


def _ddl(engine: Engine, statement: str) -> None:
    """Run one DDL statement in its own transaction, waiting at most `DDL_LOCK_TIMEOUT`."""
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'")
            conn.exec_driver_sql(statement)
    except sa_exc.OperationalError as exc:
        if not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
            raise
        raise RetentionError(
            f"{TABLE} stayed busy for {DDL_LOCK_TIMEOUT}; not done, the next run retries: "
            f"{statement}"
        ) from exc


def delete_expired_rows(
    engine: Engine, cutoff: datetime, *, batch_rows: int = SQLITE_BATCH_ROWS, dry_run: bool = False
) -> int:
    """Delete rows created before `cutoff`, `batch_rows` per transaction; return how many.

    Each batch resumes after the highest id the previous one removed, so the whole run reads
    the table once, and each batch is one write statement, so it takes SQLite's write lock
    up front instead of failing to upgrade a read transaction.
    """
    table = webhook_executions
    expired = table.c.created_at < cutoff
    if dry_run:
        with engine.connect() as conn:
            count = sa.select(sa.func.count()).select_from(table).where(expired)
            return int(conn.execute(count).scalar_one())
    deleted = 0
    after: int | None = None
    while True:
        batch = sa.select(table.c.id).where(expired).order_by(table.c.id).limit(batch_rows)
        if after is not None:
            batch = batch.where(table.c.id > after)
        with engine.begin() as conn:
            removed = sa.delete(table).where(table.c.id.in_(batch)).returning(table.c.id)
            ids = conn.execute(removed).scalars().all()
        deleted += len(ids)
        if len(ids) < batch_rows:
            return deleted
        after = max(ids)
