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

from relay.ops.metrics import stream_states
from spool import SpoolDatabase, SpoolError

DRAIN_FAILING_SINCE_SAMPLE = "relay_drain_failing_since_timestamp_seconds"


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
