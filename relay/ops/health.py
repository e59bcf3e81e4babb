"""`GET /readyz`: should traffic come here? Each check names what is wrong, so the probe's
answer says what to fix.

Not ready when: the relay is stopping; the registry never loaded; the spool cannot take a
write transaction or is at its bound; the dispatcher or drain process is not running; or the
execution-log drain has failed for longer than `RELAY_READY_MAX_DRAIN_FAILURE_SECONDS` (a
short database outage is what the spool is for; a long one needs someone).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from relay.ops.metrics import DB_ERROR_CLASSES, stream_states
from spool import SpoolDatabase, SpoolError

DRAIN_FAILING_SINCE_SAMPLE = "relay_drain_failing_since_timestamp_seconds"
DRAIN_LAST_WORKED_SAMPLE = "relay_drain_last_success_timestamp_seconds"
DRAIN_SAMPLES = frozenset(
    {
        DRAIN_FAILING_SINCE_SAMPLE,
        DRAIN_LAST_WORKED_SAMPLE,
        "relay_drain_rows_total",
        "relay_db_transactions_total",
        "relay_db_errors_total",
    }
)


@dataclass(frozen=True)
class DrainHealth:
    """The execution-log drain as a person reads it on the dashboard, from the metrics every
    layout exports (the drain process's files, or this process's own)."""

    running: bool  # False: the drain process is down
    failing_seconds: float | None  # how long its cycles have failed; None while they work
    last_worked_seconds: float | None  # age of its last good cycle; None before the first
    rows: int  # written to the database since the drain started
    transactions: int
    errors: dict[str, int]  # database errors by class (transient, record, config)


@dataclass(frozen=True)
class Readiness:
    # Read through callables, so ops depends on no layer above it.
    accepting: Callable[[], bool]
    registry_loaded: Callable[[], bool]
    spool: SpoolDatabase
    metrics: CollectorRegistry
    children_down: Callable[[], list[str]]
    max_drain_failure_seconds: float

    def problems(self) -> list[str]:
        """Why the relay is not ready; empty when it is. Blocking: call from a thread."""
        found = []
        if not self.accepting():
            found.append("the relay is shutting down")
        if not self.registry_loaded():
            found.append("the webhook registry has not loaded yet")
        found += self._spool_problems()
        found += [f"the {name} process is not running" for name in self.children_down()]
        failing_since = self.metrics.get_sample_value(DRAIN_FAILING_SINCE_SAMPLE) or 0.0
        if failing_since and time.time() - failing_since > self.max_drain_failure_seconds:
            found.append(
                f"the execution-log drain has failed for {time.time() - failing_since:.0f} s "
                "(the database is unreachable or refuses the rows; see the log)"
            )
        return found

    def drain(self) -> DrainHealth:
        # One pass over the registry (each `get_sample_value` would collect all of it again,
        # the spool's queries and the roles' metric files included).
        samples = {
            (sample.name, sample.labels.get("error_class")): sample.value
            for family in self.metrics.collect()
            for sample in family.samples
            if sample.name in DRAIN_SAMPLES
        }
        now = time.time()
        failing_since = samples.get((DRAIN_FAILING_SINCE_SAMPLE, None), 0.0)
        last_worked = samples.get((DRAIN_LAST_WORKED_SAMPLE, None), 0.0)
        return DrainHealth(
            running="drain" not in self.children_down(),
            failing_seconds=max(0.0, now - failing_since) if failing_since else None,
            last_worked_seconds=max(0.0, now - last_worked) if last_worked else None,
            rows=int(samples.get(("relay_drain_rows_total", None), 0)),
            transactions=int(samples.get(("relay_db_transactions_total", None), 0)),
            errors={c: int(samples.get(("relay_db_errors_total", c), 0)) for c in DB_ERROR_CLASSES},
        )

    def platform(self) -> dict[str, object] | None:
        """The platform streams for the answer's detail: how many are connected, and which
        companies' are not and why not in a word (`refused`: the platform turned the token
        down). Not a readiness problem: one company's token does not make the relay unfit
        for traffic. None when the relay keeps no stream."""
        states = stream_states(self.metrics)
        open_states = {c: s for c, s in states.items() if s != "closed"}
        if not open_states:
            return None
        return {
            "connected": sum(state == "connected" for state in open_states.values()),
            "not_connected": {c: s for c, s in sorted(open_states.items()) if s != "connected"},
        }

    def _spool_problems(self) -> list[str]:
        try:
            self.spool.write(lambda _conn: None)  # takes the write lock; writes nothing
            used = self.spool.used_bytes()
        except SpoolError as exc:
            return [f"the spool cannot be written: {exc}"]
        bound = self.spool.max_bytes
        if bound is not None and used >= bound:
            return [f"the spool is full ({used} of {bound} bytes)"]
        return []
