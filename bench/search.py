"""Measurement: reading the execution log, on a million logged rows in PostgreSQL.

The log is filled with `rows` rows shaped like the real event (the request bodies of
`TEMPLATE_ROWS` generated rows, each row with its own ids, number and time), spread evenly
over the last `SPREAD_DAYS` days and 100 companies, COPYed in, then VACUUM ANALYZEd; the
spool holds `pending` rows of the last minute, as a busy relay's does. Each query shape runs
`runs` times (after a few unmeasured warm-up runs), with choices drawn from a fixed seed,
in turn with a baseline on the same choice (which one goes first rotates, so neither always
finds the caches warmed by the other):

- by phone: `search_executions(phone=...)`, the relay's search (a window of the last week,
  keyset order, the spool's pending rows merged in) against the original design's query
  for a number (`WHERE phone_number = ... ORDER BY created_at DESC`, every partition, no
  spool); and the same search over an empty spool, which tells the spool's share;
- company page: the pages of one company's last week, walked by cursor, 50 rows each,
  against the same pages read with `LIMIT 50 OFFSET n` (what keyset pagination avoids);
- stats: `stats()` over one day (per company and status, per hour) against the design's
  monitoring query per company over the whole table.

    python -m bench.search [ROWS]    # on its own throwaway cluster
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence, Sized
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine

from bench.common import OUT_DIR, Scratch, fill_spool, open_spool
from bench.console_pages import run_console_pages
from bench.data import RowFactory, company_ids, decode, row_values
from bench.latencies import WARM_UP, Latencies, Shape, in_turn
from bench.pg import BenchPostgres
from bench.writers import COPY_SQL
from relay.db.engine import make_engine
from relay.execution_log.record import ExecutionRow
from relay.execution_log.retention import Month
from relay.execution_log.search import ExecutionQuery, Page, search_executions
from relay.execution_log.stats import stats
from spool import DurableQueue

TARGET_P99_MS = 20.0
STATS_SHAPE = "stats of one day (per company and status, per hour)"
# The same search with nothing pending: what the spool's part costs, by difference.
PHONE_WITHOUT_SPOOL = "by phone, first page, spool empty"
TEMPLATE_ROWS = 2_000
SPREAD_DAYS = 60  # the rows' times: the last two months, like a log with 90 days' retention
COMPANIES = 100
NUMBERS_PER_COMPANY = 2_000  # a company calls each of its numbers a few times
PAGE = 50
STATS_RUNS = 20  # its baseline reads the whole table: a second or more per run
PHONE_SQL = (
    "SELECT * FROM webhook_executions WHERE phone_number = %s ORDER BY created_at DESC LIMIT 50"
)
OFFSET_SQL = """SELECT execution_id, created_at, company_id, webhook_id, event_type, message_id,
    attempt, status, response_status, error, duration_ms, phone_number
FROM webhook_executions
WHERE company_id = %s AND created_at >= %s AND created_at < %s
ORDER BY created_at DESC, execution_id DESC LIMIT 51 OFFSET %s"""
WINDOW_ROWS = "SELECT count(*) FROM webhook_executions WHERE created_at >= %s"
TABLE_BYTES = """SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits
WHERE inhparent = 'webhook_executions'::regclass"""
MONITORING_SQL = """SELECT c.name AS empresa, COUNT(*) AS total_logs,
    COUNT(CASE WHEN we.status = 'success' THEN 1 END) AS sucessos,
    COUNT(CASE WHEN we.status = 'failed' THEN 1 END) AS falhas
FROM webhook_executions we JOIN companies c ON c.id = we.company_id
WHERE we.phone_number IS NOT NULL GROUP BY c.name ORDER BY total_logs DESC"""


@dataclass(frozen=True)
class SearchSizes:
    rows: int
    runs: int  # per query shape
    pending: int  # rows of the last minute in the spool
    console_runs: int  # per console page (bench/console_pages.py)


FULL_SEARCH = SearchSizes(1_000_000, 200, 2_000, 50)
QUICK_SEARCH = SearchSizes(20_000, 20, 200, 5)


@dataclass(frozen=True)
class SearchResult:
    rows: int
    pending: int
    window_rows: int  # rows in the default window (the last week)
    fill_seconds: float
    table_bytes: int
    shapes: tuple[Shape, ...]
    console: tuple[Shape, ...]  # the console's pages, each against its API route


def run_search(
    database_url: str, conninfo: str, scratch: Scratch, sizes: SearchSizes
) -> SearchResult:
    """Fill the log (after emptying it) and the spool, then time every query shape."""
    now = datetime.now(UTC)
    log = _Log(sizes.rows, now, seed=11)
    started = time.perf_counter()
    log.fill(conninfo)
    fill_seconds = time.perf_counter() - started
    db, outbox = open_spool(scratch.fresh("search") / "spool.db")
    fill_spool(
        db,
        outbox,
        RowFactory(COMPANIES, seed=12).backlog(sizes.pending, now - timedelta(minutes=1)),
    )
    empty_db, empty = open_spool(scratch.fresh("search-empty") / "spool.db")
    engine = make_engine(database_url)
    rng = random.Random(13)
    try:
        with psycopg.connect(conninfo, autocommit=True) as raw:
            window_rows = _scalar(raw, WINDOW_ROWS, (now - timedelta(days=7),))
            table_bytes = _scalar(raw, TABLE_BYTES)
            phones = [rng.choice(log.recent_numbers) for _ in range(sizes.runs + WARM_UP)]
            shapes = (
                *_phone_shapes(engine, outbox, empty, raw, now, phones),
                _pages(engine, outbox, raw, now, rng, sizes.runs),
                _stats_shape(engine, raw, now, rng),
            )
    finally:
        engine.dispose()
        db.close()
        empty_db.close()
    console = run_console_pages(
        database_url,
        conninfo,
        scratch.fresh("console"),
        log.webhook_pairs,
        log.recent_numbers,
        sizes.console_runs,
    )
    return SearchResult(
        sizes.rows, sizes.pending, window_rows, fill_seconds, table_bytes, shapes, console
    )


def _phone_shapes(
    engine: Engine,
    outbox: DurableQueue,
    empty: DurableQueue,
    raw: psycopg.Connection[Any],
    now: datetime,
    phones: Sequence[str],
) -> tuple[Shape, Shape]:
    """The relay's search by number, with the spool's pending rows and with none, and the
    design note's query, each run in turn on the same numbers."""

    def search(spool: DurableQueue, phone: str) -> Sized:
        query = ExecutionQuery(phone=phone)
        return search_executions(engine, spool, query, clock=lambda: now).items

    runs = [
        in_turn(
            [
                lambda p=phone: search(outbox, p),
                lambda p=phone: search(empty, p),
                lambda p=phone: raw.execute(PHONE_SQL, (p,)).fetchall(),
            ],
            n,
            len,
        )
        for n, phone in enumerate(phones)
    ][WARM_UP:]
    baseline = Latencies.of([run[2][0] for run in runs])
    name = "design note's SQL by number (every partition, no spool)"

    def shape(title: str, n: int) -> Shape:
        relay = Latencies.of([run[n][0] for run in runs])
        return Shape(title, name, relay, baseline, sum(run[n][1] for run in runs))

    return shape("by phone, first page", 0), shape(PHONE_WITHOUT_SPOOL, 1)


def _pages(
    engine: Engine,
    outbox: DurableQueue,
    raw: psycopg.Connection[Any],
    now: datetime,
    rng: random.Random,
    runs: int,
) -> Shape:
    """Walk companies' last week page by page: each page by cursor, and by OFFSET."""
    companies = company_ids(COMPANIES)
    since = now - timedelta(days=7)
    timed: list[list[tuple[float, int]]] = []
    while len(timed) < runs + WARM_UP:
        company = rng.choice(companies)
        pages: list[Page] = []
        for number in range(1_000):  # bounded: a company has ~1,200 rows in the week
            cursor = pages[-1].next_cursor if pages else None
            query = ExecutionQuery(company_id=company, since=since, until=now, cursor=cursor)

            def by_cursor(q: ExecutionQuery = query, found: list[Page] = pages) -> Sized:
                found.append(search_executions(engine, outbox, q, clock=lambda: now))
                return found[-1].items

            offset = (company, since, now, number * PAGE)
            timed.append(
                in_turn(
                    [by_cursor, lambda o=offset: raw.execute(OFFSET_SQL, o).fetchall()], number, len
                )
            )
            if pages[-1].next_cursor is None or len(timed) >= runs + WARM_UP:
                break
    measured = timed[WARM_UP:]
    return Shape(
        "company page (pages of its last week, by cursor)",
        "the same pages by LIMIT 50 OFFSET n",
        Latencies.of([run[0][0] for run in measured]),
        Latencies.of([run[1][0] for run in measured]),
        sum(run[0][1] for run in measured),
    )


def _stats_shape(
    engine: Engine, raw: psycopg.Connection[Any], now: datetime, rng: random.Random
) -> Shape:
    days = [now - timedelta(days=rng.uniform(1, 6)) for _ in range(STATS_RUNS + WARM_UP)]
    runs = [
        in_turn(
            [
                lambda d=day: stats(engine, since=d, until=d + timedelta(days=1)).companies,
                lambda: raw.execute(MONITORING_SQL).fetchall(),
            ],
            n,
            len,
        )
        for n, day in enumerate(days)
    ][WARM_UP:]
    return Shape(
        STATS_SHAPE,
        "design note's monitoring SQL per company (whole table)",
        Latencies.of([run[0][0] for run in runs]),
        Latencies.of([run[1][0] for run in runs]),
        sum(run[0][1] for run in runs),
    )


def _scalar(raw: psycopg.Connection[Any], query: str, params: tuple[object, ...] = ()) -> int:
    row = raw.execute(query, params).fetchone()
    return int(row[0] or 0) if row else 0


class _Log:
    """The generated log: bodies of a template, ids, numbers and times of their own."""

    def __init__(self, rows: int, now: datetime, seed: int) -> None:
        self.rows = rows
        self.start = now - timedelta(days=SPREAD_DAYS)
        self.step = (now - self.start) / rows
        self._rng = random.Random(seed)
        self._companies = [str(c) for c in company_ids(COMPANIES)]
        self._webhooks = [str(uuid.uuid5(uuid.NAMESPACE_URL, c)) for c in self._companies]
        self.webhook_pairs = list(zip(self._webhooks, self._companies, strict=True))
        self._numbers = [
            [
                f"55{11 + c % 80}9{self._rng.randrange(10**8):08d}"
                for _ in range(NUMBERS_PER_COMPANY)
            ]
            for c in range(COMPANIES)
        ]
        self.recent_numbers: list[str] = []  # of the last week's rows: what people look up
        self._recent_from = now - timedelta(days=7)
        factory = RowFactory(COMPANIES, seed)
        self._template: list[ExecutionRow] = decode(
            [item.as_record() for item in factory.backlog(TEMPLATE_ROWS)]
        )

    def fill(self, conninfo: str) -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("TRUNCATE webhook_executions")
            month = Month.of(self.start)
            while month.start < self.start + self.step * self.rows + timedelta(days=62):
                conn.execute(month.create_partition_sql())
                month = month.plus(1)
            conn.execute(
                "INSERT INTO companies (id, name) SELECT id::uuid, name"
                " FROM unnest(%s::text[], %s::text[]) AS c(id, name) ON CONFLICT DO NOTHING",
                (self._companies, [f"Empresa {n:03d}" for n in range(COMPANIES)]),
            )
        with psycopg.connect(conninfo) as conn:
            with conn.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
                for values in self._rows():
                    copy.write_row(values)
            conn.commit()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) webhook_executions")

    def _rows(self) -> Iterator[tuple[object, ...]]:
        rng = self._rng
        for n in range(self.rows):
            company = n % COMPANIES
            ok = rng.random() < 0.95
            number = rng.choice(self._numbers[company])
            at = self.start + self.step * n
            if at >= self._recent_from:
                self.recent_numbers.append(number)
            row = self._template[n % TEMPLATE_ROWS]._replace(
                execution_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                company_id=self._companies[company],
                webhook_id=self._webhooks[company],
                message_id=f"msg_{rng.getrandbits(128):032x}",
                status="success" if ok else "failed",
                response_status=200 if ok else 503,
                phone_number=number,
                created_at=at.isoformat(),
            )
            yield row_values(row)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    sizes = FULL_SEARCH if not args else dataclasses.replace(FULL_SEARCH, rows=int(args[0]))
    scratch = Scratch()
    load_before = os.getloadavg()
    try:
        with BenchPostgres(OUT_DIR / "pg-search") as pg:
            result = run_search(pg.url, pg.conninfo, scratch, sizes)
    finally:
        scratch.cleanup()
    print(
        f"{result.rows:,} rows ({result.table_bytes / 1e6:,.0f} MB with indexes, filled in "
        f"{result.fill_seconds:.0f} s), {result.window_rows:,} in the last week, "
        f"{result.pending:,} pending in the spool; load average (1/5/15 min) before "
        f"{'/'.join(f'{n:.1f}' for n in load_before)}, after "
        f"{'/'.join(f'{n:.1f}' for n in os.getloadavg())}"
    )
    for shape in (*result.shapes, *result.console):
        print(
            f"{shape.name}: p50 {shape.relay.p50:.1f} ms, p99 {shape.relay.p99:.1f} ms "
            f"({len(shape.relay.runs_ms)} runs, {shape.rows_found:,} rows); {shape.baseline_name}: "
            f"p50 {shape.baseline.p50:.1f} ms, p99 {shape.baseline.p99:.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
