"""Latencies of a query shape and its baseline, as the read benchmarks report them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

WARM_UP = 5  # unmeasured runs first, so the first measured one does not pay for cold caches


@dataclass(frozen=True)
class Latencies:
    """Milliseconds of each measured run, sorted."""

    runs_ms: tuple[float, ...]

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latencies:
        return cls(tuple(sorted(s * 1000 for s in seconds)))

    def percentile(self, pct: float) -> float:
        """Nearest rank: a reported p99 is a latency that happened."""
        rank = max(1, -(-len(self.runs_ms) * pct // 100))
        return self.runs_ms[int(rank) - 1]

    @property
    def p50(self) -> float:
        return statistics.median(self.runs_ms)

    @property
    def p99(self) -> float:
        return self.percentile(99)


@dataclass(frozen=True)
class Shape:
    """One query shape, the relay's reading and its baseline's."""

    name: str
    baseline_name: str
    relay: Latencies
    baseline: Latencies
    rows_found: int  # by the relay's reads, all runs together: the shape found something
