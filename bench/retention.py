"""Measurement: removing an expired month of execution-log rows, partition DROP vs DELETE.

Two identical copies of the same rows (one month of `rows`, plus a quarter as many in the
next month) are loaded one after the other into the partitioned `webhook_executions`, each
followed by a CHECKPOINT so both removals pay the same full-page-image cost. The first copy
loses its month to the relay's own retention job (`apply_retention`, which DROPs the
partition); the second to a `DELETE ... WHERE created_at` over the same month, followed by
the VACUUM that a DELETE leaves to do. WAL bytes are `pg_wal_lsn_diff` of
`pg_current_wal_lsn()` around each step.

    python -m bench.retention [ROWS]    # on its own throwaway cluster
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from sqlalchemy import Engine

from bench.common import OUT_DIR
from bench.data import EPOCH, RowFactory, decode, row_values
from bench.pg import BenchPostgres, warm_engine
from bench.writers import raw_copy
from relay.db.engine import make_engine
from relay.execution_log.record import ExecutionRow
from relay.execution_log.retention import Month, apply_retention

RETENTION_DAYS = 90
TEMPLATE_ROWS = 2_000  # distinct generated bodies; larger fills reuse them with new ids
WAL_TARGET = 0.01  # the drop may cost at most 1% of the DELETE's WAL bytes
_EXPIRED = Month.of(EPOCH).plus(-4)  # months no other measurement writes to
_NEIGHBOUR = _EXPIRED.plus(1)
_COUNT = "SELECT count(*) FROM webhook_executions WHERE created_at >= %s AND created_at < %s"


@dataclass(frozen=True)
class Removal:
    wal_bytes: int
    seconds: float


@dataclass(frozen=True)
class RetentionResult:
    rows: int  # in the expired month
    neighbour_rows: int  # in the next month, which must stay
    month_bytes: int  # the expired partition with its indexes, before removal
    drop: Removal  # the retention job's run that drops the partition
    delete: Removal
    vacuum: Removal  # VACUUM of the month's table after the DELETE

    @property
    def wal_ratio(self) -> float:
        return self.drop.wal_bytes / self.delete.wal_bytes if self.delete.wal_bytes else 0.0


def within_target(_value: float, ratio: float | None) -> bool:
    """Report check: the drop's WAL is at most `WAL_TARGET` of the DELETE's."""
    return ratio is not None and ratio <= WAL_TARGET


def run_retention(pg: BenchPostgres, rows: int, seed: int = 7) -> RetentionResult:
    """Fill, DROP via the retention job, refill the identical rows, DELETE + VACUUM."""
    template = decode([item.as_record() for item in RowFactory(100, seed).backlog(TEMPLATE_ROWS)])
    rng = random.Random(seed)
    loaded = [
        *_spread(template, _EXPIRED, rows, rng),
        *_spread(template, _NEIGHBOUR, rows // 4, rng),
    ]
    # Retention at `now` keeps 90 days: its cutoff is exactly the end of the expired month.
    now = _EXPIRED.end + timedelta(days=RETENTION_DAYS)
    engine = make_engine(pg.url)
    try:
        _fill(pg, engine, loaded)
        _check(pg, rows, rows // 4)
        apply_retention(engine, now, 100 * 365)  # the months ahead exist before measuring
        month_bytes = _month_bytes(pg)
        warm_engine(engine)
        with pg.measure() as delta:
            started = time.perf_counter()
            report = apply_retention(engine, now, RETENTION_DAYS)
            seconds = time.perf_counter() - started
        if report.dropped != (_EXPIRED.partition_name,) or report.created:
            raise RuntimeError(f"retention did not drop just the expired month: {report}")
        drop = Removal(delta.wal_bytes, seconds)
        _check(pg, 0, rows // 4)

        _fill(pg, engine, loaded)
        _check(pg, rows, rows // 4)
        delete = _timed(pg, _DELETE, (_EXPIRED.start, _EXPIRED.end))
        _check(pg, 0, rows // 4)
        vacuum = _timed(pg, f"VACUUM {_EXPIRED.partition_name}", ())
    finally:
        engine.dispose()
    return RetentionResult(rows, rows // 4, month_bytes, drop, delete, vacuum)


_DELETE = "DELETE FROM webhook_executions WHERE created_at >= %s AND created_at < %s"


def _spread(
    template: Sequence[ExecutionRow], month: Month, count: int, rng: random.Random
) -> Iterator[tuple[object, ...]]:
    """`count` rows evenly over `month`, bodies taken from `template`, each with its own id."""
    span = month.end - month.start
    for n in range(count):
        row = template[n % len(template)]._replace(
            execution_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            created_at=(month.start + span * n / count).isoformat(),
        )
        yield row_values(row)


def _fill(pg: BenchPostgres, engine: Engine, rows: Sequence[tuple[object, ...]]) -> None:
    pg.reset()
    with engine.begin() as conn:
        for month in (_EXPIRED, _NEIGHBOUR):
            conn.exec_driver_sql(month.create_partition_sql())
    raw_copy(pg.conninfo, rows)
    with psycopg.connect(pg.conninfo, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def _timed(pg: BenchPostgres, statement: str, params: tuple[object, ...]) -> Removal:
    with psycopg.connect(pg.conninfo, autocommit=True) as conn, pg.measure() as delta:
        started = time.perf_counter()
        conn.execute(statement, params)
        seconds = time.perf_counter() - started
    return Removal(delta.wal_bytes, seconds)


def _month_bytes(pg: BenchPostgres) -> int:
    with psycopg.connect(pg.conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_total_relation_size(%s::regclass)", (_EXPIRED.partition_name,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _check(pg: BenchPostgres, expired: int, neighbour: int) -> None:
    with psycopg.connect(pg.conninfo, autocommit=True) as conn:
        counts = [
            conn.execute(_COUNT, (month.start, month.end)).fetchone()
            for month in (_EXPIRED, _NEIGHBOUR)
        ]
    found = tuple(int(row[0]) if row else -1 for row in counts)
    if found != (expired, neighbour):
        raise RuntimeError(f"expected {expired} + {neighbour} rows, found {found}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    rows = int(args[0]) if args else 200_000
    with BenchPostgres(OUT_DIR / "pg-retention") as pg:
        result = run_retention(pg, rows)
    print(
        f"{result.rows:,} rows ({result.month_bytes / 1e6:,.0f} MB with indexes): "
        f"DROP via retention {result.drop.wal_bytes:,} B WAL in {result.drop.seconds:.3f} s; "
        f"DELETE {result.delete.wal_bytes:,} B WAL in {result.delete.seconds:.2f} s "
        f"(+ VACUUM {result.vacuum.wal_bytes:,} B in {result.vacuum.seconds:.2f} s); "
        f"ratio {result.wal_ratio:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
