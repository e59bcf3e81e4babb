"""Counts over a window of the execution log: the monitoring queries of the original design
(totals, successes and failures per company; rows per hour), for one company or all.

Each is one aggregate over the window's rows, read from an index that carries company and
status (`idx_webhook_executions_created`, or the company's own index), so PostgreSQL reads
only the window's partitions and not the table: the cost grows with the window, not with
the log. Rows still in the spool (the last minute) are not counted yet.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.engine import is_postgresql
from relay.db.schema import companies as companies_table
from relay.db.schema import webhook_executions
from relay.errors import InputError
from relay.execution_log.inputs import Window
from relay.execution_log.rows import reading
from spool import Clock, utc_now

Bucket = Literal["hour", "day"]
BUCKETS: tuple[str, ...] = get_args(Bucket)
_SQLITE_BUCKETS = {"hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d 00:00:00"}
_table = webhook_executions


@dataclass(frozen=True)
class Counts:
    total: int
    successes: int
    failures: int

    @classmethod
    def of(cls, by_status: Counter[str]) -> Counts:
        return cls(sum(by_status.values()), by_status["success"], by_status["failed"])

    def as_json(self) -> dict[str, int]:
        return {"total": self.total, "successes": self.successes, "failures": self.failures}


@dataclass(frozen=True)
class CompanyCounts:
    company_id: uuid.UUID | None
    name: str | None  # None: the company is gone (its log rows stay)
    counts: Counts

    def as_json(self) -> dict[str, Any]:
        company = None if self.company_id is None else str(self.company_id)
        return {"company_id": company, "name": self.name, **self.counts.as_json()}


@dataclass(frozen=True)
class BucketCounts:
    start: datetime  # UTC hour or day
    counts: Counts

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), **self.counts.as_json()}


@dataclass(frozen=True)
class Stats:
    window: Window
    bucket: Bucket
    by_status: dict[str, int]
    companies: tuple[CompanyCounts, ...]  # most rows first
    buckets: tuple[BucketCounts, ...]  # oldest first; buckets without rows are left out

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.window.since.isoformat(),
            "until": self.window.until.isoformat(),
            "bucket": self.bucket,
            "by_status": self.by_status,
            "companies": [company.as_json() for company in self.companies],
            "buckets": [bucket.as_json() for bucket in self.buckets],
        }


def stats(
    engine: Engine,
    *,
    company_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    bucket: str = "hour",
    companies: frozenset[uuid.UUID] | None = None,
    clock: Clock = utc_now,
) -> Stats:
    """Counts of the window [since, until) (default: the last week), per status, per company
    and per `bucket`, within `companies` (None: all)."""
    if bucket not in BUCKETS:
        raise InputError(422, "bucket", f"must be one of {', '.join(BUCKETS)}")
    period = cast(Bucket, bucket)
    window = Window.of(since, until, clock())
    scope = _scope(company_id, companies)
    if scope is not None and not scope:
        return Stats(window, period, {}, (), ())
    in_window = [_table.c.created_at >= window.since, _table.c.created_at < window.until]
    if scope is not None:
        in_window.append(_table.c.company_id.in_(sorted(scope)))
    per_company: dict[uuid.UUID | None, Counter[str]] = {}
    per_bucket: dict[datetime, Counter[str]] = {}
    with reading(engine) as conn:
        for company, status, count in conn.execute(_counted(_table.c.company_id, in_window)):
            per_company.setdefault(company, Counter())[status] += count
        for start, status, count in conn.execute(_counted(_bucket_of(conn, period), in_window)):
            per_bucket.setdefault(_utc(start), Counter())[status] += count
        names = _names(conn, [company for company in per_company if company is not None])
    by_status: Counter[str] = sum(per_company.values(), Counter())
    ranked = sorted(per_company.items(), key=lambda pair: -sum(pair[1].values()))
    return Stats(
        window,
        period,
        dict(by_status),
        tuple(CompanyCounts(c, names.get(c) if c else None, Counts.of(n)) for c, n in ranked),
        tuple(BucketCounts(start, Counts.of(per_bucket[start])) for start in sorted(per_bucket)),
    )


def _scope(
    company_id: uuid.UUID | None, companies: frozenset[uuid.UUID] | None
) -> frozenset[uuid.UUID] | None:
    if company_id is None:
        return companies
    return frozenset({company_id}) & companies if companies is not None else frozenset({company_id})


def _counted(group: sa.ColumnElement[Any], where: list[sa.ColumnElement[bool]]) -> sa.Select[Any]:
    """`group`, status, count(*) over the window: one aggregate over an index range."""
    return (
        sa.select(group, _table.c.status, sa.func.count())
        .where(*where)
        .group_by(group, _table.c.status)
    )


def _bucket_of(conn: sa.Connection, bucket: str) -> sa.ColumnElement[Any]:
    """The UTC hour or day a row falls in, as the database can compute it."""
    if is_postgresql(conn.engine):
        in_utc = sa.func.timezone("UTC", _table.c.created_at)
        return sa.func.date_trunc(bucket, in_utc)
    return sa.func.strftime(_SQLITE_BUCKETS[bucket], _table.c.created_at)


def _names(conn: sa.Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID | None, str]:
    if not ids:
        return {}
    query = sa.select(companies_table.c.id, companies_table.c.name).where(
        companies_table.c.id.in_(ids)
    )
    return {company: name for company, name in conn.execute(query)}


def _utc(start: datetime | str) -> datetime:
    moment = datetime.fromisoformat(start) if isinstance(start, str) else start
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
