"""Run every benchmark side by side, print the table and write bench/results.md.

    python -m bench.run            # full run (under ~20 minutes on 2 cores)
    python -m bench.run --quick    # smoke run (about a minute), to bench/out/results-quick.md

All traffic stays on 127.0.0.1 (a throwaway PostgreSQL cluster with fsync on); scratch files
live under bench/out/ on the repository's filesystem.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.appends import PQ_SETUP_NOTE, AppendComparison, compare_appends
from bench.backlog import BacklogResult, run_backlog
from bench.common import OUT_DIR, REMOVE_PHASE, Scratch, describe_phases
from bench.console_pages import TARGET_MS as CONSOLE_TARGET_MS
from bench.data import RowFactory, payload_sizes
from bench.drain import (
    COPY_SELECT_SINK,
    CURRENT_SINK,
    EXECUTEMANY_SINK,
    DrainResults,
    run_drain,
)
from bench.io_cost import IoResults, run_io
from bench.latencies import Shape
from bench.machine import describe
from bench.pg import BenchPostgres
from bench.platform import FULL as PLATFORM_FULL
from bench.platform import QUICK as PLATFORM_QUICK
from bench.platform import run_platform_bench
from bench.probe import Probe, run_probe
from bench.report import Better, Report, Row, at_least_ratio, at_most_value, fmt
from bench.retention import (
    TEMPLATE_ROWS,
    WAL_TARGET,
    RetentionResult,
    run_retention,
    within_target,
)
from bench.search import (
    FULL_SEARCH,
    PHONE_WITHOUT_SPOOL,
    QUICK_SEARCH,
    STATS_SHAPE,
    TARGET_P99_MS,
    SearchResult,
    run_search,
)
from bench.startup import FULL as STARTUP_FULL
from bench.startup import QUICK as STARTUP_QUICK
from bench.startup import THIS_RELAY, run_startup_bench

RESULTS = Path(__file__).resolve().parent / "results.md"
COMPANIES = 100
SINK_NAMES = {
    CURRENT_SINK: "current ExecutionLogSink",
    COPY_SELECT_SINK: "COPY to temp table + INSERT..SELECT ON CONFLICT",
    EXECUTEMANY_SINK: "pipelined executemany of INSERT..ON CONFLICT",
}


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does; `quick` keeps the whole run near a minute."""

    append_records: int
    append_repeats: int
    drain_rows: int
    drain_repeats: int
    persist_queue_rows: int
    sink_rows: int
    io_rows: int
    scenario_minutes: int
    backlog_rows: int
    backlog_deadline_seconds: float
    retention_rows: int


FULL = Sizes(3_000, 5, 50_000, 5, 2_000, 10_000, 10_000, 10, 1_000_000, 1_200, 200_000)
QUICK = Sizes(1_000, 1, 5_000, 1, 300, 2_000, 1_000, 3, 20_000, 300, 20_000)


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


# -- table rows -----------------------------------------------------------------------------


def _append_rows(report: Report, results: list[AppendComparison]) -> None:
    for comparison in results:
        report.add(
            Row(
                f"Spool append, synchronous=FULL, {comparison.threads} thread(s)",
                comparison.spool_rate,
                "rec/s",
                f"persist-queue put, FULL, {comparison.threads} thread(s)",
                comparison.baseline_rate,
                ">= 5x",
                at_least_ratio(5),
            )
        )


def _drain_rows(report: Report, drain: DrainResults) -> None:
    name = f"Drain {drain.rows:,} rows to PostgreSQL (Drainer + ExecutionLogSink)"
    report.add(
        Row(
            name,
            drain.spool_rate,
            "rows/s",
            "raw psycopg COPY of the same rows",
            drain.copy_rate,
            ">= 0.8x",
            at_least_ratio(0.8),
        )
    )
    report.add(
        Row(
            name,
            drain.spool_rate,
            "rows/s",
            "persist-queue get+ack, INSERT+COMMIT per row",
            drain.persist_queue.rows_per_second,
            ">= 30x",
            at_least_ratio(30),
        )
    )
    report.add(
        Row(
            f"Drain with sink: {SINK_NAMES[EXECUTEMANY_SINK]}",
            drain.rate(EXECUTEMANY_SINK),
            "rows/s",
            f"drain with sink: {SINK_NAMES[COPY_SELECT_SINK]}",
            drain.rate(COPY_SELECT_SINK),
        )
    )
    report.add(
        Row(
            f"Drain with the {SINK_NAMES[CURRENT_SINK]}",
            drain.rate(CURRENT_SINK),
            "rows/s",
            f"drain with sink: {SINK_NAMES[COPY_SELECT_SINK]}",
            drain.rate(COPY_SELECT_SINK),
        )
    )
    for sinks in drain.sinks:
        for kind in (EXECUTEMANY_SINK, CURRENT_SINK):
            report.add(
                Row(
                    f"Sink alone, {sinks.batch_size:,}-row batches: {SINK_NAMES[kind]}",
                    sinks.rate(kind),
                    "rows/s",
                    SINK_NAMES[COPY_SELECT_SINK],
                    sinks.rate(COPY_SELECT_SINK),
                )
            )


def _io_rows(report: Report, io: IoResults) -> None:
    for label, attr, unit in (
        ("PG commits per 1,000 rows", "commits_per_1000", "commits"),
        ("PG WAL bytes per 1,000 rows", "wal_per_1000", "B"),
    ):
        for baseline_name, baseline in (
            ("naive: one INSERT + COMMIT per row", io.naive),
            ("per-company batcher (50 rows / 60 s)", io.batcher),
        ):
            report.add(
                Row(
                    f"{label}: spool drain ({io.spool.rows:,}-row backlog)",
                    getattr(io.spool, attr),
                    unit,
                    baseline_name,
                    getattr(baseline, attr),
                    better=Better.LOWER,
                )
            )
    spool, batcher, lockstep = io.scenario_spool, io.scenario_batcher, io.scenario_lockstep
    scenario = f"Scenario {io.companies} companies x 10 rows/min"
    report.add(
        Row(
            f"{scenario}: commits/min, spool (random arrival times)",
            spool.commits_per_minute,
            "/min",
            "per-company batcher, same rows",
            batcher.commits_per_minute,
            "<= 2 /min",
            at_most_value(2),
            Better.LOWER,
        )
    )
    report.add(
        Row(
            f"{scenario}: commits/min, spool (all companies in lockstep, every 6 s)",
            lockstep.commits_per_minute,
            "/min",
            "per-company batcher (random arrivals)",
            batcher.commits_per_minute,
            better=Better.LOWER,
        )
    )
    report.add(
        Row(
            f"{scenario}: WAL bytes per 1,000 rows, spool (random arrivals)",
            spool.wal_per_1000,
            "B",
            "per-company batcher, same rows",
            batcher.wal_per_1000,
            better=Better.LOWER,
        )
    )


def _retention_rows(report: Report, retention: RetentionResult) -> None:
    name = f"Retention: remove a month of {retention.rows:,} rows by dropping its partition"
    drop, delete = retention.drop, retention.delete
    baseline = "DELETE of the same rows (identical copy)"
    report.add(
        Row(
            f"{name}: WAL bytes",
            drop.wal_bytes,
            "B",
            baseline,
            delete.wal_bytes,
            f"<= {WAL_TARGET:.0%}",
            within_target,
            Better.LOWER,
        )
    )
    report.add(
        Row(f"{name}: time", drop.seconds, "s", baseline, delete.seconds, better=Better.LOWER)
    )


def _retention_details(report: Report, retention: RetentionResult) -> None:
    """Note, details and finding of the retention measurement."""
    drop, delete, vacuum = retention.drop, retention.delete, retention.vacuum
    report.notes.append(
        f"Retention: {retention.rows:,} rows spread evenly over one month and "
        f"{retention.neighbour_rows:,} over the next (the request bodies of {TEMPLATE_ROWS:,} "
        "generated rows, reused with fresh execution ids), COPYed into the partitioned "
        "`webhook_executions`, then a CHECKPOINT. Drop: the relay's retention job "
        "(`relay.execution_log.retention.apply_retention`, 90 days, at the instant the month "
        "expires; the "
        "months ahead already exist), timed and WAL-measured around the whole run. DELETE: the "
        "same rows loaded again the same way, then `DELETE ... WHERE created_at` over the "
        "month (autocommit), and the VACUUM of its table afterwards. The next month's rows are "
        "counted after each: untouched."
    )
    report.details += [
        "",
        "### Retention",
        "",
        f"- The expired month's partition held {retention.rows:,} rows in "
        f"{retention.month_bytes / 1e6:,.0f} MB (table, TOAST and indexes).",
        f"- Drop (retention job): {drop.wal_bytes:,} B of WAL in {drop.seconds:.3f} s. DELETE: "
        f"{delete.wal_bytes / 1e6:,.1f} MB of WAL in {delete.seconds:.2f} s; the VACUUM it "
        f"leaves to do: {vacuum.wal_bytes / 1e6:,.1f} MB more in {vacuum.seconds:.2f} s.",
    ]
    report.findings.append(
        f"Retention: dropping a month's partition wrote {drop.wal_bytes / 1e3:,.0f} kB of WAL, "
        f"{retention.wal_ratio:.2%} of the {delete.wal_bytes / 1e6:,.0f} MB a DELETE of the "
        "same rows wrote (a DELETE logs every page it touches, and still leaves the space to "
        "VACUUM)."
    )


def _backlog_rows(report: Report, backlog: BacklogResult) -> None:
    report.add(
        Row(f"{backlog.rows:,}-row backlog: drain time", backlog.drain_seconds, "s", "-", None)
    )
    report.add(
        Row(
            f"{backlog.rows:,}-row backlog: peak RSS of the draining process",
            backlog.peak_rss_mib * 1024 * 1024 / 1e6,
            "MB",
            "-",
            None,
            "<= 150 MB",
            at_most_value(150),
            Better.LOWER,
        )
    )


def _search_rows(report: Report, search: SearchResult) -> None:
    """p99 and p50 of each query shape against its baseline; the searches have a target, and
    so do the console's pages (each against its API route)."""
    for shape in search.shapes:
        targeted = shape.name not in (STATS_SHAPE, PHONE_WITHOUT_SPOOL)
        name = f"Executions search, {search.rows:,} logged rows: {shape.name}"
        _shape_rows(report, name, shape, TARGET_P99_MS if targeted else None)
    for shape in search.console:
        page = shape.name.removeprefix("console: ")
        _shape_rows(
            report, f"Console page, {search.rows:,} logged rows: {page}", shape, CONSOLE_TARGET_MS
        )


def _shape_rows(report: Report, name: str, shape: Shape, target_ms: float | None) -> None:
    report.add(
        Row(
            f"{name}: p99",
            shape.relay.p99,
            "ms",
            f"{shape.baseline_name}: p99",
            shape.baseline.p99,
            f"p99 < {target_ms:g} ms" if target_ms is not None else "-",
            at_most_value(target_ms) if target_ms is not None else None,
            Better.LOWER,
        )
    )
    report.add(
        Row(
            f"{name}: p50",
            shape.relay.p50,
            "ms",
            f"{shape.baseline_name}: p50",
            shape.baseline.p50,
            better=Better.LOWER,
        )
    )


def _search_details(report: Report, search: SearchResult) -> None:
    report.notes.append(
        f"Executions search (`bench/search.py`): {search.rows:,} rows COPYed into the "
        "partitioned `webhook_executions` (the bodies of 2,000 generated rows, each row with "
        "its own ids, number and time, evenly over the last 60 days and 100 companies, 2,000 "
        "numbers per company), then VACUUM ANALYZE; the spool holds "
        f"{search.pending:,} rows of the last minute. Each shape runs after 5 unmeasured "
        "warm-up runs, in turn with its baseline on the same choice (drawn from a fixed seed; "
        "which goes first rotates, so neither always finds caches warmed by the other). By "
        "phone: a number with rows in the last week, the relay's first page (the default "
        "window, keyset order, pending rows merged), and the same over an empty spool, "
        "against the design note's query for a number. Company page: every page of a "
        "company's last week by cursor, against the same page by OFFSET. Stats: `stats()` of "
        "one day against the design note's monitoring query over the whole table. Latencies "
        "are wall time in this process, p99 by nearest rank."
    )
    report.details += ["", "### Executions search", ""]
    report.details.append(
        f"- {search.rows:,} rows ({search.table_bytes / 1e6:,.0f} MB with indexes) filled in "
        f"{search.fill_seconds:.0f} s; {search.window_rows:,} in the last week (the default "
        f"window); {search.pending:,} pending in the spool."
    )
    report.notes.append(
        "Console pages (`bench/console_pages.py`): on the same rows, a real `relay serve` "
        "(three processes) on that database, signed in; each page timed over HTTP from the "
        "request to its last byte, in turn with the API route answering the same question "
        "(which goes first rotates): history by phone and by company against the API's "
        "search, the company page against its last 10 executions, an execution with its "
        "timeline against the API's execution, the dashboard against the 7-day stats."
    )
    for shape in (*search.shapes, *search.console):
        report.details.append(
            f"- {shape.name}: {len(shape.relay.runs_ms)} runs, p50 {shape.relay.p50:.1f} ms, "
            f"p99 {shape.relay.p99:.1f} ms, max {shape.relay.runs_ms[-1]:.1f} ms "
            f"({shape.rows_found:,} rows found in all); {shape.baseline_name}: p50 "
            f"{shape.baseline.p50:.1f} ms, p99 {shape.baseline.p99:.1f} ms."
        )


# -- prose ----------------------------------------------------------------------------------


def _notes(report: Report, sizes: Sizes, sample_bytes: tuple[float, float]) -> None:
    spool_bytes, body_bytes = sample_bytes
    report.notes += [
        f"Rows: generated `ExecutionResult`s over {COMPANIES} companies whose request body has "
        "exactly the fields of `shared/samples/call-history-was-created.json` with varied "
        f"values (phone number, ids, dates, names); mean request body {body_bytes:,.0f} B "
        f"(the sample itself is 1,096 B as compact JSON), mean spool payload "
        f"{spool_bytes:,.0f} B. Same seed, same rows for every strategy in a measurement.",
        "Spool: `SpoolDatabase(synchronous='FULL')` (WAL), fresh file per run under "
        "`bench/out/` on the repository's filesystem.",
        "persist-queue: `SQLiteAckQueue(path, multithreading=True, auto_commit=True)`; it sets "
        "`journal_mode=WAL` itself and leaves `synchronous` at SQLite's default; we run "
        "`PRAGMA synchronous = FULL` on each of its connections. "
        + (PQ_SETUP_NOTE[0] + "." if PQ_SETUP_NOTE else ""),
        f"Appends: {sizes.append_records:,} records per run, split over the threads, all "
        f"threads released by a barrier; median of {sizes.append_repeats} runs, spool and "
        "persist-queue runs alternating. Each `append`/`put` returns after its COMMIT.",
        "PostgreSQL: throwaway cluster (`tests/support/pg_cluster.py`) with fsync=on, "
        "synchronous_commit=on, autovacuum off, on 127.0.0.1. Before each workload the table "
        "is truncated and a CHECKPOINT taken, so each pays the same full-page-image cost.",
        f"Drain: {sizes.drain_rows:,} rows force-drained by the real `Drainer` (default "
        "`DrainPolicy`) and the relay's `ExecutionLogSink` as it is in the tree, including "
        "reading and deleting the spool rows (synchronous=FULL); median of "
        f"{sizes.drain_repeats} runs. Raw COPY: the same rows, already decoded, COPYed "
        "straight into `webhook_executions` in one transaction (no dedupe, no spool, no "
        f"validation). persist-queue baseline: {sizes.persist_queue_rows:,} rows, each `get` "
        "+ decode + INSERT..ON CONFLICT + COMMIT + `ack` (3 fsyncs per row: SQLite get, "
        "PostgreSQL commit, SQLite ack). Connections are opened before the timer everywhere.",
        "Sink strategies: the two strategies the issue names are implemented in "
        "`bench/writers.py` with the relay's decoding and error classification, so they stay "
        "comparable whatever the relay's sink does: COPY into a temp table + INSERT..SELECT "
        "ON CONFLICT DO NOTHING, and psycopg `executemany` of INSERT..ON CONFLICT DO NOTHING "
        "(pipeline mode). Each is measured end to end in the drain and alone on "
        f"{sizes.sink_rows:,} rows in batches of 100, 1,000 and 10,000 (median of "
        f"{sizes.drain_repeats + 2} runs), next to the relay's current sink.",
        "Commits: `pg_stat_database.xact_commit` of the bench database, read from a connection "
        "that stays in one never-committed transaction with `stats_fetch_consistency = none`; "
        "connections opened before a reading run `pg_stat_force_next_flush()` and go idle, "
        "workload connections are closed before the reading, and readings are polled until "
        "stable. A session that created a temp table adds one commit when it disconnects "
        "(PostgreSQL drops the table). WAL: `pg_wal_lsn_diff` of `pg_current_wal_lsn()` "
        "around the workload.",
        f"Commit/WAL per 1,000 rows: one backlog of {sizes.io_rows:,} rows written by the spool "
        "drain (force), by a naive writer (one INSERT + COMMIT per row), and by an in-memory "
        "per-company batcher (flushes a company at 50 rows or 60 s, one transaction each, "
        "`executemany` of INSERT..ON CONFLICT).",
        f"Scenario: {COMPANIES} companies x 10 rows/min for {sizes.scenario_minutes} simulated "
        "minutes with an injected clock (no sleeping): rows are appended with their simulated "
        "`enqueued_at`, `drain_once(now)` runs every simulated second (again at once while "
        "`more_due`). Commits per minute are the sink transactions per simulated minute, "
        "averaged over the minutes after the first (nothing can be 60 s old earlier); "
        "PostgreSQL's own commit count over the run is given below as a cross-check. "
        "'Random arrival times' draws each row's instant uniformly within its minute; "
        "'lockstep' has every company send at the same instants, every 6 s.",
        f"Backlog: {sizes.backlog_rows:,} rows filled into one spool in 10,000-row "
        "transactions, then drained (force, default policy) by a child process "
        "(`python -m bench.backlog_child`); peak RSS is that child's own high-water mark "
        "(`VmHWM` from /proc/self/status, MB = 10^6 bytes), cross-checked by sampling its RSS "
        "from the parent with psutil every 50 ms. `ru_maxrss` (RUSAGE_CHILDREN or wait4) is not "
        "used: Linux carries the parent's peak RSS into a child across fork/vfork + exec, so "
        "it would report the benchmark parent's memory.",
    ]


def _append_details(d: list[str], probe: Probe, appends: list[AppendComparison]) -> None:
    d += ["### Appends", ""]
    d.append(
        f"- Disk probe: one-row SQLite WAL commit takes {probe.commit_full_us:.0f} us with "
        f"synchronous=FULL and {probe.commit_off_us:.0f} us without sync, so an fsync costs "
        f"about {probe.fsync_us:.0f} us here."
    )
    d.append(
        f"- Spool CPU ceiling: 1 thread at synchronous=NORMAL (no fsync per commit) appends "
        f"{probe.spool_normal_rate:,.0f} rec/s."
    )
    for c in appends:
        per_commit = c.appends_per_commit
        d.append(
            f"- {c.threads} thread(s): spool runs "
            + ", ".join(fmt(r.records_per_second) for r in c.spool)
            + " rec/s; persist-queue runs "
            + ", ".join(fmt(r.records_per_second) for r in c.baseline)
            + " rec/s"
            + (f"; {per_commit:.1f} appends per spool commit." if per_commit else ".")
        )


def _drain_details(d: list[str], drain: DrainResults) -> None:
    d += ["", "### Drain", ""]
    mid = drain.median_run
    extra = mid.delta.commits - mid.totals.transactions
    d.append(
        "- Spool drain runs (current sink): "
        + ", ".join(
            f"{fmt(t.rows_per_second)} rows/s ({t.transactions} transactions)" for t in drain.spool
        )
        + f"; in the median run PostgreSQL saw {mid.delta.commits} commits"
        + (f" ({extra} more than the sink's transactions)" if extra else "")
        + f" and {mid.delta.wal_bytes / 1e6:,.1f} MB of WAL for {drain.rows:,} rows."
    )
    d.append(
        f"- Where the median drain's {mid.totals.seconds:.2f} s went: "
        + mid.phases.describe(mid.totals.seconds)
        + "."
    )
    d.append(
        "- Raw COPY runs: " + ", ".join(fmt(r.rows_per_second) for r in drain.copy) + " rows/s."
    )
    per_row_us = drain.decode_seconds / drain.rows * 1e6
    d.append(
        "- Decoding and validating the records with `relay.execution_log.record` (measured on "
        f"its own) "
        f"costs {per_row_us:.1f} us/row ({1e6 / per_row_us:,.0f} rows/s); raw COPY skips it."
    )
    for kind in (COPY_SELECT_SINK, EXECUTEMANY_SINK):
        d.append(
            f"- Drain runs with sink {SINK_NAMES[kind]}: "
            + ", ".join(fmt(run.totals.rows_per_second) for run in drain.drains[kind])
            + " rows/s."
        )
    pq = drain.persist_queue
    d.append(
        f"- persist-queue consumer: {pq.rows:,} rows in {pq.seconds:.1f} s; PostgreSQL saw "
        f"{pq.commits} commits and {(pq.wal_bytes or 0) / 1e6:,.1f} MB of WAL."
    )
    for s in drain.sinks:
        runs = "; ".join(f"{SINK_NAMES[kind]} {s.runs(kind)}" for kind in s.rates)
        d.append(f"- Sink alone, {s.batch_size:,}-row batches (rows/s per run): {runs}.")


def _io_details(d: list[str], io: IoResults) -> None:
    d += ["", "### Commits and WAL", ""]
    for name, cost in (
        ("spool drain", io.spool),
        ("naive writer", io.naive),
        ("per-company batcher", io.batcher),
    ):
        d.append(
            f"- {name}: {cost.rows:,} rows, {cost.delta.commits} commits "
            f"({cost.transactions} write transactions counted by the writer), "
            f"{cost.delta.wal_bytes / 1e6:,.2f} MB WAL."
        )
    for name, sc in (
        ("spool, random arrivals", io.scenario_spool),
        ("per-company batcher, random arrivals", io.scenario_batcher),
        ("spool, lockstep arrivals", io.scenario_lockstep),
    ):
        minutes = ", ".join(str(n) for n in sc.steady_minutes())
        d.append(
            f"- Scenario, {name}: commits in minutes 2..{sc.minutes}: [{minutes}] (max "
            f"{sc.max_commits_per_minute}); {sc.rows_written:,} rows written; PostgreSQL "
            f"counted {sc.delta.commits} commits for {sc.transactions} write transactions; "
            f"{sc.delta.wal_bytes / 1e6:,.2f} MB WAL ({sc.commits_per_1000:.1f} commits and "
            f"{sc.wal_per_1000 / 1e3:,.0f} kB WAL per 1,000 rows)."
        )


def _backlog_details(d: list[str], backlog: BacklogResult) -> None:
    d += ["", "### Backlog", ""]
    d.append(
        f"- Filled {backlog.rows:,} rows in {backlog.fill_seconds:.0f} s (spool files "
        f"{backlog.spool_bytes / 1e6:,.0f} MB). The child drained them in "
        f"{backlog.drain_seconds:.1f} s ({backlog.rows_per_second:,.0f} rows/s, "
        f"{backlog.transactions} transactions, {backlog.cycles} cycles); opening the spool "
        f"(integrity check of the whole file) took {backlog.open_seconds:.1f} s; wall time "
        f"of the child {backlog.wall_seconds:.1f} s."
    )
    d.append(
        f"- Child RSS: {backlog.rss_after_imports_mib:.0f} MiB after imports, "
        f"{backlog.rss_after_open_mib:.0f} MiB after opening the spool, peak "
        f"{backlog.peak_rss_mib:.0f} MiB (VmHWM); largest psutil sample "
        f"{backlog.sampled_peak_rss_mib:.0f} MiB."
    )
    d.append(
        "- Where the drain's time went: "
        + describe_phases(backlog.phases, backlog.drain_seconds)
        + "."
    )


def _winner(rates: dict[str, float], kinds: tuple[str, str]) -> tuple[str, float]:
    """The faster of two strategies and by how much (ratio >= 1)."""
    fast, slow = sorted(kinds, key=lambda kind: rates[kind], reverse=True)
    return fast, (rates[fast] / rates[slow] if rates[slow] > 0 else 0.0)


def _sink_finding(report: Report, drain: DrainResults) -> None:
    pair = (COPY_SELECT_SINK, EXECUTEMANY_SINK)
    end_to_end = {kind: drain.rate(kind) for kind in (*pair, CURRENT_SINK)}
    fast, ratio = _winner(end_to_end, pair)
    parts = [
        f"Sink strategy: in the {drain.rows:,}-row drain, {SINK_NAMES[fast]} was faster "
        f"({ratio:.2f}x: {fmt(end_to_end[COPY_SELECT_SINK])} rows/s for COPY + INSERT..SELECT, "
        f"{fmt(end_to_end[EXECUTEMANY_SINK])} rows/s for executemany)."
    ]
    by_batch = []
    for sinks in drain.sinks:
        rates = {kind: sinks.rate(kind) for kind in sinks.rates}
        batch_fast, batch_ratio = _winner(rates, pair)
        by_batch.append((sinks.batch_size, batch_fast))
        parts.append(
            f"Alone at {sinks.batch_size:,}-row batches: {SINK_NAMES[batch_fast]} "
            f"{batch_ratio:.2f}x faster."
        )
    large = max(by_batch)[1]
    if large == fast == COPY_SELECT_SINK:
        parts.append("For backlog drains, COPY + INSERT..SELECT is the better of the two.")
    elif large == fast == EXECUTEMANY_SINK:
        parts.append("For backlog drains, executemany is the better of the two.")
    else:
        parts.append("Large batches and the end-to-end drain disagree: no clear winner.")
    parts.append(
        f"The relay's current sink drained at {fmt(end_to_end[CURRENT_SINK])} rows/s "
        f"({end_to_end[CURRENT_SINK] / end_to_end[fast]:.2f}x the better of the two)."
    )
    report.findings.append(" ".join(parts))


def _append_finding(report: Report, probe: Probe, appends: list[AppendComparison]) -> None:
    best_pq = max(c.baseline_rate for c in appends)
    ceiling = probe.spool_normal_rate / best_pq
    eight = max(appends, key=lambda c: c.threads)
    report.findings.append(
        "Appends: fsyncs are cheap on this machine: a one-row SQLite commit with "
        f"synchronous=FULL took {probe.commit_full_us:.0f} us in the probe (about "
        f"{probe.fsync_us:.0f} us of it waiting for the disk) and persist-queue managed a put "
        f"every ~{1e6 / best_pq:.0f} us. Even with no fsync at all the spool appends "
        f"{fmt(probe.spool_normal_rate)} rec/s on one thread ({ceiling:.1f}x persist-queue's "
        "FULL rate), so the spool's own CPU per append (Python and SQLite work per record) "
        + (
            "puts 5x out of reach on this disk whatever the batching. "
            if ceiling < 4.5
            else "leaves little room: 5x would need nearly every fsync shared. "
            if ceiling < 7
            else "leaves room for 5x if enough appends share each fsync. "
        )
        + f"With {eight.threads} threads one spool commit carried "
        f"{fmt(eight.appends_per_commit)} appends on average. The ratio grows with the cost "
        "of an fsync (network or cloud volumes), which this machine does not have."
    )


def _findings(
    report: Report,
    probe: Probe,
    appends: list[AppendComparison],
    drain: DrainResults,
    io: IoResults,
    backlog: BacklogResult | None,
) -> None:
    """Conclusions worded from this run's numbers, not fixed in advance."""
    _sink_finding(report, drain)
    _append_finding(report, probe, appends)
    decode_share = drain.decode_seconds / (drain.rows / drain.spool_rate)
    report.findings.append(
        "Drain versus raw COPY: decoding and validating the records, measured on its own, "
        f"amounts to {decode_share:.0%} of the spool drain's time per row "
        f"({drain.decode_seconds / drain.rows * 1e6:.0f} us/row), work the raw COPY baseline "
        "does not do; the per-step split of the drain is in Details."
    )
    sc, lock = io.scenario_spool, io.scenario_lockstep
    report.findings.append(
        f"Scenario: with random arrival times the drain made {sc.commits_per_minute:.1f} "
        f"commits per simulated minute (max {sc.max_commits_per_minute}), with all companies "
        f"in lockstep {lock.commits_per_minute:.1f}; the per-company batcher made "
        f"{io.scenario_batcher.commits_per_minute:.1f}."
        + (
            " Companies that become due at different seconds each cost a cycle of their own."
            if sc.commits_per_minute > 2 * max(lock.commits_per_minute, 1)
            else ""
        )
    )
    report.findings.append(
        "WAL bytes per row are about the same for every strategy (the rows themselves "
        "dominate); what batching saves is commits, i.e. WAL flushes / fsyncs, not WAL volume."
    )
    if backlog is not None:
        mid = drain.median_run
        small = mid.phases.seconds.get(REMOVE_PHASE, 0.0)
        large = backlog.phases.get(REMOVE_PHASE, 0.0)
        report.findings.append(
            f"Large backlog: {backlog.rows:,} rows drained at {fmt(backlog.rows_per_second)} "
            f"rows/s against {fmt(drain.spool_rate)} rows/s for {drain.rows:,}; deleting the "
            f"drained rows from the spool took {large / backlog.drain_seconds:.0%} of the "
            f"drain ({large / max(1, backlog.transactions):.2f} s per transaction), against "
            f"{small / mid.totals.seconds:.0%} ({small / max(1, mid.totals.transactions):.2f} "
            f"s per transaction) in the smaller drain. Opening the "
            f"{backlog.spool_bytes / 1e6:,.0f} MB spool took {backlog.open_seconds:.1f} s "
            "(the integrity check reads the whole file at every open)."
        )


def _service_section(quick: bool) -> str:
    """`bench.service` in a fresh interpreter, since its load generator times each request.

    In this process, which by then holds millions of generated rows, the garbage
    collector's full passes stalled the load generator for tens of milliseconds and the
    intake p99 measured them (seen: 57-65 ms here, 7-15 ms in `python -m bench.service`).
    """
    output = OUT_DIR / "service_results.md"
    command = [sys.executable, "-m", "bench.service", "--output", str(output)]
    subprocess.run([*command, "--quick"] if quick else command, check=True)
    return output.read_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Spool benchmarks, side by side.")
    parser.add_argument("--quick", action="store_true", help="small smoke run (~1 minute)")
    parser.add_argument(
        "--skip-service", action="store_true", help="skip the relay service benchmark"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="markdown results (default bench/results.md; bench/out/results-quick.md with --quick)",
    )
    parser.add_argument(
        "--skip-backlog", action="store_true", help="skip the large-backlog measurement"
    )
    parser.add_argument(
        "--skip-search", action="store_true", help="skip the executions-search measurement"
    )
    parser.add_argument(
        "--skip-startup", action="store_true", help="skip the start-up with many webhooks"
    )
    parser.add_argument(
        "--skip-platform", action="store_true", help="skip the platform source's measurement"
    )
    parser.add_argument("--keep", action="store_true", help="keep scratch files in bench/out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sizes = QUICK if args.quick else FULL
    output = args.output or (OUT_DIR / "results-quick.md" if args.quick else RESULTS)
    started = time.perf_counter()
    load_before = _load()
    scratch = Scratch()
    report = Report()
    backlog: BacklogResult | None = None
    search: SearchResult | None = None
    try:
        _progress("generating rows")
        factory = RowFactory(COMPANIES, seed=1)
        drain_items = list(factory.backlog(sizes.drain_rows))
        append_items = drain_items[: sizes.append_records]
        _progress("probing the disk")
        probe = run_probe(scratch, append_items[:500])
        appends = []
        for threads in (1, 8):
            _progress(f"appends, {threads} thread(s)")
            appends.append(compare_appends(scratch, append_items, threads, sizes.append_repeats))
        _append_rows(report, appends)
        _progress("starting PostgreSQL")
        with BenchPostgres(OUT_DIR / "pg") as pg:
            _progress("drain")
            drain = run_drain(
                pg,
                scratch,
                drain_items,
                drain_items[: sizes.persist_queue_rows],
                drain_items[: sizes.sink_rows],
                sizes.drain_repeats,
            )
            _drain_rows(report, drain)
            _progress("commits and WAL, scenario")
            io_items = list(RowFactory(COMPANIES, seed=3).backlog(sizes.io_rows))
            io = run_io(pg, scratch, io_items, COMPANIES, sizes.scenario_minutes)
            _io_rows(report, io)
            _progress(f"retention: a month of {sizes.retention_rows:,} rows, DROP vs DELETE")
            retention = run_retention(pg, sizes.retention_rows)
            _retention_rows(report, retention)
            if not args.skip_backlog:
                _progress(f"backlog of {sizes.backlog_rows:,} rows")
                backlog = run_backlog(
                    pg, scratch, sizes.backlog_rows, sizes.backlog_deadline_seconds
                )
                _backlog_rows(report, backlog)
            if not args.skip_search:
                search_sizes = QUICK_SEARCH if args.quick else FULL_SEARCH
                _progress(f"executions search on {search_sizes.rows:,} logged rows")
                search = run_search(pg.url, pg.conninfo, scratch, search_sizes)
                _search_rows(report, search)
            machine = describe(OUT_DIR, pg.server_version())
    finally:
        if not args.keep:
            scratch.cleanup()
    _notes(report, sizes, payload_sizes(drain_items[:2_000]))
    details = report.details
    details.append(
        f"- Load average (1/5/15 min) before the run {load_before}, after {_load()}: the "
        "machine was not otherwise reserved for the benchmark."
    )
    details.append("")
    _append_details(details, probe, appends)
    _drain_details(details, drain)
    _io_details(details, io)
    if backlog is not None:
        _backlog_details(details, backlog)
    if search is not None:
        _search_details(report, search)
    _findings(report, probe, appends, drain, io, backlog)
    _retention_details(report, retention)
    service_section = ""
    if not args.skip_service:
        _progress("relay service end to end (intake, dispatch, logging)")
        service_section = "\n\n" + _service_section(args.quick)
    startup_section = ""
    if not args.skip_startup:
        _progress("relay start-up with 1 and 1,000 signed webhooks")
        startup = run_startup_bench(
            STARTUP_QUICK if args.quick else STARTUP_FULL, {"this checkout": THIS_RELAY}
        )
        startup_section = "\n\n" + startup.markdown()
    platform_section = ""
    if not args.skip_platform:
        _progress("platform source: one socket.io connection against POST /v1/events")
        platform = run_platform_bench(PLATFORM_QUICK if args.quick else PLATFORM_FULL)
        platform_section = "\n\n" + platform.markdown()
    elapsed = time.perf_counter() - started
    print(report.text_table())
    output.parent.mkdir(parents=True, exist_ok=True)
    markdown = report.markdown(machine, "quick" if args.quick else "full", elapsed)
    output.write_text(markdown + service_section + startup_section + platform_section)
    _progress(f"done in {elapsed / 60:.1f} min; results written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
