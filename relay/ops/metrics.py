"""Prometheus metrics: what each role of the relay counts, and one page that shows them all.

`relay serve` runs the dispatcher and the drain in child processes. They count into
prometheus-client's multiprocess files (`PROMETHEUS_MULTIPROC_DIR`, a private directory beside
the spool); intake's process reads those files at scrape time, so `GET /metrics` on the one
port shows every role. In one process (tests, `relay demo`) the roles count into the metric
objects of this process. Either way `RoleMetrics` shows every series from the start, at zero
until a role counts it.

Spool depths, bytes and ages are read from the spool file when scraped, so they are right
whichever process changed it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from spool import DrainReport, DurableQueue, Outcome, ScheduledQueue, SpoolDatabase, utc_now

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# -- intake (the process that serves HTTP) ------------------------------------------------------
INTAKE_RESPONSES = Counter(
    "relay_intake_responses", "Answers to POST /v1/events, by HTTP status.", ["code"], registry=None
)

# -- the dispatcher and drain roles ---------------------------------------------------------
DELIVERIES = Counter(
    "relay_deliveries",
    "Delivery attempts by outcome: success, retry (failed, tried again later), failed (given "
    "up), dropped (webhook gone before the attempt).",
    ["outcome"],
    registry=None,
)
DELIVERY_SECONDS = Histogram(
    "relay_delivery_seconds",
    "Time of one POST attempt, until the answer's headers or the error.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=None,
)
RETRIES_SCHEDULED = Counter(
    "relay_retries_scheduled", "Failed attempts rescheduled for a later try.", registry=None
)
DRAIN_ROWS = Counter(
    "relay_drain_rows", "Execution-log rows written to the database.", registry=None
)
DRAIN_BATCHES = Counter(
    "relay_drain_batches", "Drain cycles that wrote rows (one transaction each).", registry=None
)
DRAIN_SECONDS = Histogram(
    "relay_drain_seconds",
    "Time of one drain cycle that wrote rows or failed.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=None,
)
DB_TRANSACTIONS = Counter(
    "relay_db_transactions", "Execution-log transactions committed in the database.", registry=None
)
DB_ERRORS = Counter(
    "relay_db_errors",
    "Execution-log database errors by class: transient (retried), record (dead-lettered), "
    "config (retried slowly; needs an operator).",
    ["error_class"],
    registry=None,
)
DRAIN_FAILING_SINCE = Gauge(
    "relay_drain_failing_since_timestamp_seconds",
    "Unix time the drain started failing; 0 while it works.",
    multiprocess_mode="mostrecent",
    registry=None,
)
DRAIN_LAST_WORKED = Gauge(
    "relay_drain_last_success_timestamp_seconds",
    "Unix time the drain last finished a cycle that worked (wrote rows or found none); "
    "0 before its first.",
    multiprocess_mode="mostrecent",
    registry=None,
)

# -- the platform source (one series per company that has a stream) --------------------------
PLATFORM_EVENTS = Counter(
    "relay_platform_events",
    "Events the platform streams handed on, by company and outcome: accepted (stored with its "
    "deliveries), unmatched (no webhook's filters passed), duplicate (its id was seen within "
    "RELAY_IDEMPOTENCY_HOURS), malformed (not storable; logged).",
    ["company", "outcome"],
    registry=None,
)
PLATFORM_STREAM_STATE = Gauge(
    "relay_platform_stream_state",
    "1 for the state a company's stream is in (connecting, connected, refused, disconnected, "
    "closed), 0 for the others.",
    ["company", "state"],
    multiprocess_mode="mostrecent",
    registry=None,
)
PLATFORM_LAST_EVENT = Gauge(
    "relay_platform_last_event_timestamp_seconds",
    "Unix time of the company's last event from the platform (age: time() - this); 0: none yet.",
    ["company"],
    multiprocess_mode="mostrecent",
    registry=None,
)
PLATFORM_RECONNECTS = Gauge(
    "relay_platform_reconnects",
    "Connections of the company's stream established after its first, since it opened.",
    ["company"],
    multiprocess_mode="mostrecent",
    registry=None,
)
PLATFORM_DISCONNECTED_SECONDS = Gauge(
    "relay_platform_disconnected_seconds",
    "Time the company's stream has spent not connected since it opened.",
    ["company"],
    multiprocess_mode="mostrecent",
    registry=None,
)
STREAM_STATES = ("connecting", "connected", "refused", "disconnected", "closed")

# The label values known up front, shown at 0 before their first count. Intake's are the
# statuses `POST /v1/events` answers with (relay/intake/app.py).
INTAKE_CODES = ("202", "400", "401", "404", "405", "413", "415", "422", "503")
for _code in INTAKE_CODES:
    INTAKE_RESPONSES.labels(_code)
for _outcome in ("success", "retry", "failed", "dropped"):
    DELIVERIES.labels(_outcome)
DB_ERROR_CLASSES = ("transient", "record", "config")
for _error_class in DB_ERROR_CLASSES:
    DB_ERRORS.labels(_error_class)


def count_delivery(outcome: str, *, seconds: float | None = None, retry: bool = False) -> None:
    """One delivery attempt's result: success, retry, failed or dropped."""
    DELIVERIES.labels(outcome).inc()
    if seconds is not None:
        DELIVERY_SECONDS.observe(seconds)
    if retry:
        RETRIES_SCHEDULED.inc()


INTAKE_METRICS: tuple[Collector, ...] = (INTAKE_RESPONSES,)
ROLE_METRICS: tuple[Collector, ...] = (
    DELIVERIES,
    DELIVERY_SECONDS,
    RETRIES_SCHEDULED,
    DRAIN_ROWS,
    DRAIN_BATCHES,
    DRAIN_SECONDS,
    DB_TRANSACTIONS,
    DB_ERRORS,
    DRAIN_FAILING_SINCE,
    DRAIN_LAST_WORKED,
    PLATFORM_EVENTS,
    PLATFORM_STREAM_STATE,
    PLATFORM_LAST_EVENT,
    PLATFORM_RECONNECTS,
    PLATFORM_DISCONNECTED_SECONDS,
)


def stream_states(metrics: CollectorRegistry) -> dict[str, str]:
    """company id -> the state its platform stream is in, from the exposition registry (in
    every layout: the platform role's files or this process's gauges)."""
    states: dict[str, str] = {}
    for family in metrics.collect():
        if family.name != PLATFORM_STREAM_STATE._name:
            continue
        for sample in family.samples:
            if sample.value == 1 and "company" in sample.labels:
                states[sample.labels["company"]] = sample.labels["state"]
    return states


class DrainMetrics:
    """Counts scheduled drain cycles (the `DrainScheduler` hook) and keeps the time the
    current run of failures began, which readiness reads."""

    def __init__(self) -> None:
        self._failing_since: float | None = None
        DRAIN_FAILING_SINCE.set(0)  # a restarted dispatcher must not show its predecessor's

    def record(self, report: DrainReport, seconds: float) -> None:
        outcome = report.outcome
        failed = outcome in (Outcome.TRANSIENT_ERROR, Outcome.CONFIG_ERROR)
        if failed or outcome is Outcome.WRITTEN:
            DRAIN_SECONDS.observe(seconds)
        if report.rows_written:
            DRAIN_ROWS.inc(report.rows_written)
            DRAIN_BATCHES.inc()
        DB_TRANSACTIONS.inc(report.transactions)
        if report.dead_lettered:
            DB_ERRORS.labels("record").inc(report.dead_lettered)
        if outcome is Outcome.TRANSIENT_ERROR:
            DB_ERRORS.labels("transient").inc()
        elif outcome is Outcome.CONFIG_ERROR:
            DB_ERRORS.labels("config").inc()
        worked = outcome in (Outcome.WRITTEN, Outcome.IDLE)
        if worked:
            DRAIN_LAST_WORKED.set(time.time())
        if failed and self._failing_since is None:
            self._failing_since = time.time()
            DRAIN_FAILING_SINCE.set(self._failing_since)
        elif worked and self._failing_since is not None:
            self._failing_since = None
            DRAIN_FAILING_SINCE.set(0)


class SpoolCollector(Collector):
    """Depths, bytes and the oldest pending log row, read from the spool at scrape time."""

    def __init__(self, spool: SpoolDatabase, inbox: ScheduledQueue, outbox: DurableQueue) -> None:
        self._spool, self._inbox, self._outbox = spool, inbox, outbox

    def collect(self) -> Iterator[Metric]:
        stats = self._outbox.stats()
        items = GaugeMetricFamily(
            "relay_spool_items", "Items waiting in the spool, by queue.", labels=["queue"]
        )
        items.add_metric(["inbox"], self._inbox.count())
        items.add_metric(["outbox"], stats.pending)
        items.add_metric(["dead_letters"], stats.dead_letters)
        yield items
        yield GaugeMetricFamily(
            "relay_spool_bytes", "Bytes of live data in the spool file.", self._spool.used_bytes()
        )
        yield GaugeMetricFamily(
            "relay_spool_file_bytes",
            "Size of the spool file and its WAL on disk.",
            self._spool.file_bytes(),
        )
        if self._spool.max_bytes is not None:
            yield GaugeMetricFamily(
                "relay_spool_max_bytes",
                "The bound on live spool data (RELAY_SPOOL_MAX_BYTES); intake answers 503 "
                "beyond it.",
                self._spool.max_bytes,
            )
        oldest = min((b.oldest_enqueued_at for b in stats.backlogs), default=None)
        age = (utc_now() - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "relay_spool_oldest_pending_seconds",
            "Age of the oldest execution-log row not yet in the database.",
            max(0.0, age),
        )


class RoleMetrics(Collector):
    """The dispatcher's and the drain's metrics, with every series they declare.

    From the roles' multiprocess files (`directory`), or from this process's metric objects
    (None: the roles run here). A series no role has counted yet (a child still starting, a
    label value not yet seen) is shown at 0, so alerts and `rate()` work on a relay that has
    not delivered or drained yet.
    """

    def __init__(self, directory: Path | None) -> None:
        self._files: MultiProcessCollector | None = None
        if directory is not None:
            self._files = MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        declared = [family for metric in ROLE_METRICS for family in metric.collect()]
        if self._files is None:
            yield from declared
            return
        counted = {f.name: f for f in self._files.collect()}  # type: ignore[no-untyped-call]
        for family in declared:
            yield _with_zeros(counted.get(family.name), family)


def _with_zeros(counted: Metric | None, declared: Metric) -> Metric:
    """`counted`'s samples, and 0 for each series of `declared` that it lacks (not `_created`:
    the files have no creation times)."""
    family = counted or Metric(declared.name, declared.documentation, declared.type)
    present = {(sample.name, tuple(sorted(sample.labels.items()))) for sample in family.samples}
    for sample in declared.samples:
        key = (sample.name, tuple(sorted(sample.labels.items())))
        if key not in present and not sample.name.endswith("_created"):
            family.add_sample(sample.name, sample.labels, 0.0)
    return family


def fresh_metrics_directory(spool_path: Path) -> Path:
    """Where `relay serve`'s children write their metric files: private, beside the spool,
    emptied at each start (files of an earlier run would add its counts to this one's)."""
    directory = metrics_directory(spool_path)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700)
    return directory


def shared_metrics_directory(spool_path: Path) -> Path:
    """The same directory for roles run as units of their own, which write into it while
    intake restarts: kept, and made (private) if missing."""
    directory = metrics_directory(spool_path)
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def metrics_directory(spool_path: Path) -> Path:
    """`<spool>.metrics`: beside the spool, so every role of one relay finds the same one."""
    return Path(f"{spool_path}.metrics")


def exposition_registry(
    spool_collector: SpoolCollector, *, role_directory: Path | None
) -> CollectorRegistry:
    """The registry `GET /metrics` renders: intake's metrics, the spool's, and the roles'
    (from their files in `role_directory`, or from this process)."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in (*INTAKE_METRICS, spool_collector, RoleMetrics(role_directory)):
        registry.register(collector)
    return registry


def child_environment(directory: Path) -> dict[str, str]:
    """A child role's environment: this one plus where its metrics go."""
    return {**os.environ, MULTIPROCESS_ENV: str(directory)}
