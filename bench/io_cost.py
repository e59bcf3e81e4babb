"""Measurement 3: what each strategy costs the database, in commits and WAL bytes.

Part A writes one backlog of rows three ways (spool drain, one INSERT per row, per-company
in-memory batcher) and reads `pg_stat_database.xact_commit` and the WAL position around each.

Part B is the steady-state scenario: 100 companies at 10 rows a minute each, simulated for
several minutes with an injected clock (no sleeping). Rows are appended at their simulated
times and `drain_once(now)` runs every simulated second; the per-company batcher gets the
same rows and the same ticks.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bench.common import Scratch, append_batch, drain_all, fill_spool, open_spool
from bench.data import EPOCH, RowFactory, SpoolInput, decode, row_values
from bench.pg import BenchPostgres, Delta, publish_stats, warm_engine
from bench.writers import PerCompanyBatcher, insert_one_per_transaction
from relay.db.engine import make_engine
from relay.execution_log.sink import ExecutionLogSink
from spool import Drainer, DrainPolicy

ROWS_PER_COMPANY_MINUTE = 10
_LOCKSTEP_GAP = 60 / ROWS_PER_COMPANY_MINUTE  # seconds between a company's rows
_MAX_CYCLES_PER_TICK = 100  # bounded "drain again while more is due" within one tick


@dataclass(frozen=True)
class Cost:
    """Commits and WAL of one strategy over `rows` rows."""

    rows: int
    delta: Delta
    transactions: int  # write transactions the strategy itself counted

    @property
    def commits_per_1000(self) -> float:
        return self.delta.commits * 1000 / self.rows if self.rows else 0.0

    @property
    def wal_per_1000(self) -> float:
        return self.delta.wal_bytes * 1000 / self.rows if self.rows else 0.0


def _rows(items: Sequence[SpoolInput]) -> list[tuple[object, ...]]:
    return [row_values(row) for row in decode([item.as_record() for item in items])]


def spool_backlog_cost(pg: BenchPostgres, scratch: Scratch, items: Sequence[SpoolInput]) -> Cost:
    pg.reset()
    db, queue = open_spool(scratch.fresh("io-spool") / "spool.db")
    try:
        fill_spool(db, queue, items)
        engine = make_engine(pg.url)
        warm_engine(engine)
        drainer = Drainer(queue, ExecutionLogSink(engine), DrainPolicy())
        with pg.measure() as delta:
            totals = drain_all(drainer, len(items))
            engine.dispose()
    finally:
        db.close()
    return Cost(totals.rows, delta, totals.transactions)


def naive_cost(pg: BenchPostgres, items: Sequence[SpoolInput]) -> Cost:
    pg.reset()
    rows = _rows(items)
    conn = pg.connect()
    try:
        with pg.measure() as delta:
            for values in rows:
                insert_one_per_transaction(conn, values)
            conn.close()
    finally:
        conn.close()
    return Cost(len(rows), delta, len(rows))


def batcher_backlog_cost(pg: BenchPostgres, items: Sequence[SpoolInput]) -> Cost:
    """All rows arrive at once: every company flushes whenever it reaches 50 rows."""
    pg.reset()
    rows = [(item.row(), item.created_at) for item in items]
    batcher = PerCompanyBatcher(pg.conninfo)
    _publish(batcher)
    try:
        with pg.measure() as delta:
            for row, created_at in rows:
                batcher.add(row, created_at)
            batcher.flush_all()
            batcher.close()
    finally:
        batcher.close()
    return Cost(len(rows), delta, batcher.transactions)


def _publish(batcher: PerCompanyBatcher) -> None:
    publish_stats(batcher.connection)


# -- scenario -------------------------------------------------------------------------------


def scenario_events(
    companies: int, minutes: int, seed: int, lockstep: bool = False
) -> list[SpoolInput]:
    """10 rows per company per minute, at random instants (or all companies every 6 s)."""
    factory = RowFactory(companies, seed)
    rng = random.Random(seed)
    stamps: list[tuple[float, int]] = []
    for company in range(companies):
        for minute in range(minutes):
            for k in range(ROWS_PER_COMPANY_MINUTE):
                offset = k * _LOCKSTEP_GAP + 0.5 if lockstep else rng.uniform(0, 60)
                stamps.append((minute * 60 + offset, company))
    stamps.sort()
    return [factory.spool_input(c, EPOCH + timedelta(seconds=t)) for t, c in stamps]


@dataclass
class ScenarioResult:
    minutes: int
    rows_written: int = 0
    transactions_by_minute: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    delta: Delta = field(default_factory=Delta)

    def steady_minutes(self) -> list[int]:
        """Commits in each minute after the first (nothing is a minute old before that)."""
        return [self.transactions_by_minute.get(m, 0) for m in range(1, self.minutes)]

    @property
    def commits_per_minute(self) -> float:
        steady = self.steady_minutes()
        return sum(steady) / len(steady) if steady else 0.0

    @property
    def max_commits_per_minute(self) -> int:
        return max(self.steady_minutes(), default=0)

    @property
    def transactions(self) -> int:
        return sum(self.transactions_by_minute.values())

    @property
    def commits_per_1000(self) -> float:
        return self.delta.commits * 1000 / self.rows_written if self.rows_written else 0.0

    @property
    def wal_per_1000(self) -> float:
        return self.delta.wal_bytes * 1000 / self.rows_written if self.rows_written else 0.0


class _SimClock:
    """The injected clock: simulated time moves only when the scenario says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _ticks(events: Sequence[SpoolInput], minutes: int) -> list[tuple[int, list[SpoolInput]]]:
    """Group events by the simulated second whose tick first sees them: (s-1, s]."""
    by_tick: dict[int, list[SpoolInput]] = defaultdict(list)
    for event in events:
        offset = (event.created_at - EPOCH).total_seconds()
        by_tick[max(1, int(-(-offset // 1)))].append(event)
    return [(s, by_tick.get(s, [])) for s in range(1, minutes * 60 + 1)]


def spool_scenario(
    pg: BenchPostgres,
    scratch: Scratch,
    events: Sequence[SpoolInput],
    minutes: int,
) -> ScenarioResult:
    """The real drain (default policy) on simulated time."""
    pg.reset()
    policy = DrainPolicy()
    clock = _SimClock(EPOCH)
    db, queue = open_spool(scratch.fresh("scenario-spool") / "spool.db", clock=clock)
    result = ScenarioResult(minutes)
    try:
        engine = make_engine(pg.url)
        warm_engine(engine)
        drainer = Drainer(queue, ExecutionLogSink(engine), policy, clock=clock)
        with pg.measure() as delta:
            for second, arrivals in _ticks(events, minutes):
                clock.now = EPOCH + timedelta(seconds=second)
                if arrivals:
                    append_batch(db, queue, arrivals)
                for _ in range(_MAX_CYCLES_PER_TICK):
                    report = drainer.drain_once(clock.now)
                    result.rows_written += report.rows_written
                    result.transactions_by_minute[(second - 1) // 60] += report.transactions
                    if not report.more_due:
                        break
            engine.dispose()
        result.delta = delta
    finally:
        db.close()
    return result


def batcher_scenario(
    pg: BenchPostgres, events: Sequence[SpoolInput], minutes: int
) -> ScenarioResult:
    pg.reset()
    result = ScenarioResult(minutes)
    batcher = PerCompanyBatcher(pg.conninfo)
    _publish(batcher)
    try:
        with pg.measure() as delta:
            for second, arrivals in _ticks(events, minutes):
                now = EPOCH + timedelta(seconds=second)
                before = batcher.transactions
                for item in arrivals:
                    batcher.add(item.row(), item.created_at)
                batcher.tick(now)
                result.transactions_by_minute[(second - 1) // 60] += batcher.transactions - before
            result.rows_written = batcher.rows_written
            batcher.close()
        result.delta = delta
    finally:
        batcher.close()
    return result


@dataclass(frozen=True)
class IoResults:
    spool: Cost
    naive: Cost
    batcher: Cost
    scenario_spool: ScenarioResult
    scenario_batcher: ScenarioResult
    scenario_lockstep: ScenarioResult
    companies: int


def run_io(
    pg: BenchPostgres,
    scratch: Scratch,
    items: Sequence[SpoolInput],
    companies: int,
    minutes: int,
) -> IoResults:
    spool = spool_backlog_cost(pg, scratch, items)
    naive = naive_cost(pg, items)
    batcher = batcher_backlog_cost(pg, items)
    events = scenario_events(companies, minutes, seed=31)
    lockstep = scenario_events(companies, minutes, seed=32, lockstep=True)
    return IoResults(
        spool=spool,
        naive=naive,
        batcher=batcher,
        scenario_spool=spool_scenario(pg, scratch, events, minutes),
        scenario_batcher=batcher_scenario(pg, events, minutes),
        scenario_lockstep=spool_scenario(pg, scratch, lockstep, minutes),
        companies=companies,
    )
