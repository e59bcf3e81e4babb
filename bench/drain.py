"""Measurement 2: rows/s from a full spool into PostgreSQL, against the two named baselines.

- the real `Drainer` + `ExecutionLogSink` force-draining a pre-filled spool;
- a raw psycopg COPY of the same rows straight into the table (the ceiling);
- persist-queue `get` + `ack` per item, each inserted in its own PostgreSQL transaction (how a
  naive consumer drains a persistent queue);
- for the record, the same drain with a pipelined `executemany` sink instead of COPY, and the
  two sinks alone on small and large batches, which decides the sink's strategy.

Connections are opened before the timer everywhere, so only the work is timed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import persistqueue

from bench.appends import open_persist_queue, pq_connections
from bench.common import (
    DrainTotals,
    PhaseTimer,
    Scratch,
    drain_all,
    fill_spool,
    median,
    open_spool,
)
from bench.data import SpoolInput, decode, row_values
from bench.pg import BenchPostgres, Delta, warm_engine
from bench.writers import COPY_SQL, CopySelectSink, ExecutemanySink, insert_one_per_transaction
from relay.db.engine import make_engine
from relay.execution_log.sink import ExecutionLogSink
from spool import Drainer, DrainPolicy, Sink, SpoolRecord

SINK_BATCHES = (100, 1_000, 10_000)
CURRENT_SINK = (
    "current"  # relay.execution_log.sink.ExecutionLogSink, whatever its strategy is today
)
COPY_SELECT_SINK = "copy-select"  # COPY into a temp table + INSERT..SELECT ON CONFLICT
EXECUTEMANY_SINK = "executemany"  # pipelined executemany of INSERT..ON CONFLICT
SINK_KINDS = (CURRENT_SINK, COPY_SELECT_SINK, EXECUTEMANY_SINK)


@dataclass(frozen=True)
class Rate:
    rows: int
    seconds: float
    commits: int | None = None
    wal_bytes: int | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def make_sink(kind: str, engine: Any) -> Sink:
    if kind == CURRENT_SINK:
        return ExecutionLogSink(engine)
    if kind == COPY_SELECT_SINK:
        return CopySelectSink(engine)
    return ExecutemanySink(engine)


@dataclass(frozen=True)
class SpoolDrainRun:
    totals: DrainTotals
    delta: Delta
    phases: PhaseTimer


def spool_drain(
    pg: BenchPostgres,
    scratch: Scratch,
    items: Sequence[SpoolInput],
    sink_kind: str = CURRENT_SINK,
) -> SpoolDrainRun:
    """Fill a fresh spool, then time force-drain cycles until it is empty."""
    pg.reset()
    db, queue = open_spool(scratch.fresh(f"drain-{sink_kind}") / "spool.db")
    try:
        fill_spool(db, queue, items)
        engine = make_engine(pg.url)
        warm_engine(engine)
        sink = make_sink(sink_kind, engine)
        phases = PhaseTimer(queue, sink)
        drainer = Drainer(queue, sink, DrainPolicy())
        with pg.measure() as delta:
            totals = drain_all(drainer, len(items))
            engine.dispose()
        left = queue.stats().pending
    finally:
        db.close()
    _check(pg, len(items), totals.rows, left)
    return SpoolDrainRun(totals, delta, phases)


def raw_copy(pg: BenchPostgres, rows: Sequence[tuple[Any, ...]]) -> Rate:
    """COPY already-decoded rows straight into the table in one transaction."""
    pg.reset()
    with pg.connect() as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
            for values in rows:
                copy.write_row(values)
        conn.commit()
        seconds = time.perf_counter() - started
    _check(pg, len(rows), len(rows), 0)
    return Rate(len(rows), seconds)


def decode_seconds(items: Sequence[SpoolInput]) -> tuple[list[tuple[Any, ...]], float]:
    """Decode with the relay's validation: the CPU cost the raw COPY baseline skips."""
    records = [item.as_record(seq) for seq, item in enumerate(items, start=1)]
    started = time.perf_counter()
    rows = [row_values(row) for row in decode(records)]
    return rows, time.perf_counter() - started


def persist_queue_drain(pg: BenchPostgres, scratch: Scratch, items: Sequence[SpoolInput]) -> Rate:
    """get + decode + INSERT + COMMIT + ack, one item at a time, from a persist-queue.

    The queue is filled without fsync (filling is not measured), then switched to
    synchronous=FULL, as durable as the spool, before the timed consumer runs.
    """
    pg.reset()
    queue = open_persist_queue(scratch.fresh("drain-pq"))
    connections = pq_connections(queue)
    conn = pg.connect()
    consumed = 0
    try:
        for sqlite_conn in connections:
            sqlite_conn.execute("PRAGMA synchronous = OFF")
        for item in items:
            queue.put((item.record_id, item.key, item.payload, item.created_at))
        for sqlite_conn in connections:
            sqlite_conn.execute("PRAGMA synchronous = FULL")
        with pg.measure() as delta:
            started = time.perf_counter()
            for _ in range(len(items) + 1):  # bounded: one more get to see it empty
                try:
                    message = queue.get(block=False)
                except persistqueue.Empty:
                    break
                record_id, key, payload, created_at = message
                row = decode([SpoolRecord(0, record_id, key, created_at, payload)])[0]
                insert_one_per_transaction(conn, row_values(row))
                queue.ack(message)
                consumed += 1
            seconds = time.perf_counter() - started
            conn.close()
    finally:
        conn.close()
        queue.close()
    _check(pg, len(items), consumed, 0)
    return Rate(consumed, seconds, delta.commits, delta.wal_bytes)


def sink_only(pg: BenchPostgres, items: Sequence[SpoolInput], kind: str, batch_size: int) -> Rate:
    """One sink's `write` on consecutive batches, no spool: isolates the load strategy."""
    pg.reset()
    records = [item.as_record(seq) for seq, item in enumerate(items, start=1)]
    engine = make_engine(pg.url)
    try:
        sink = make_sink(kind, engine)
        warm_engine(engine)
        started = time.perf_counter()
        for start in range(0, len(records), batch_size):
            sink.write(records[start : start + batch_size])
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    _check(pg, len(items), len(items), 0)
    return Rate(len(items), seconds)


def _check(pg: BenchPostgres, expected: int, written: int, left_in_queue: int) -> None:
    """A benchmark that lost or duplicated rows measured the wrong thing: refuse it."""
    in_table = pg.row_count()
    if in_table != expected or written != expected or left_in_queue:
        raise RuntimeError(
            f"expected {expected} rows; wrote {written}, table has {in_table}, "
            f"{left_in_queue} left in the queue"
        )


@dataclass(frozen=True)
class SinkComparison:
    batch_size: int
    rates: dict[str, list[Rate]]

    def rate(self, kind: str) -> float:
        return median([r.rows_per_second for r in self.rates[kind]])

    def runs(self, kind: str) -> str:
        return ", ".join(f"{r.rows_per_second:,.0f}" for r in self.rates[kind])


@dataclass(frozen=True)
class DrainResults:
    rows: int
    drains: dict[str, list[SpoolDrainRun]]
    copy: list[Rate]
    decode_seconds: float
    persist_queue: Rate
    sinks: list[SinkComparison]

    def rate(self, kind: str = CURRENT_SINK) -> float:
        return median([run.totals.rows_per_second for run in self.drains[kind]])

    @property
    def spool(self) -> list[DrainTotals]:
        return [run.totals for run in self.drains[CURRENT_SINK]]

    @property
    def median_run(self) -> SpoolDrainRun:
        runs = self.drains[CURRENT_SINK]
        ordered = sorted(runs, key=lambda run: run.totals.rows_per_second)
        return ordered[len(ordered) // 2]

    @property
    def spool_rate(self) -> float:
        return self.rate(CURRENT_SINK)

    @property
    def copy_rate(self) -> float:
        return median([r.rows_per_second for r in self.copy])


def run_drain(
    pg: BenchPostgres,
    scratch: Scratch,
    items: Sequence[SpoolInput],
    pq_items: Sequence[SpoolInput],
    sink_items: Sequence[SpoolInput],
    repeats: int,
) -> DrainResults:
    """Interleave the strategies run by run so drift on the machine hits all of them."""
    rows, decoding = decode_seconds(items)
    drains: dict[str, list[SpoolDrainRun]] = {kind: [] for kind in SINK_KINDS}
    copy: list[Rate] = []
    for repeat in range(repeats):
        shift = repeat % len(SINK_KINDS)  # rotate the order: no strategy always goes first
        for kind in SINK_KINDS[shift:] + SINK_KINDS[:shift]:
            drains[kind].append(spool_drain(pg, scratch, items, kind))
        copy.append(raw_copy(pg, rows))
    pq = persist_queue_drain(pg, scratch, pq_items)
    sinks = []
    for batch in SINK_BATCHES:
        rates: dict[str, list[Rate]] = {kind: [] for kind in SINK_KINDS}
        for repeat in range(repeats + 2):  # short runs: two more repeats against noise
            shift = repeat % len(SINK_KINDS)
            for kind in SINK_KINDS[shift:] + SINK_KINDS[:shift]:
                rates[kind].append(sink_only(pg, sink_items, kind, batch))
        sinks.append(SinkComparison(batch, rates))
    return DrainResults(
        rows=len(items),
        drains=drains,
        copy=copy,
        decode_seconds=decoding,
        persist_queue=pq,
        sinks=sinks,
    )
