"""Latencies of a query shape and its baseline, as the read benchmarks report them."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

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


def in_turn(
    readers: Sequence[Callable[[], T]],
    turn: int,
    count: Callable[[T], int],
) -> list[tuple[float, int]]:
    """Run each reader once, the `turn`-th first (so none always finds the caches warmed by
    the others); the seconds of each and the rows it found (`count` of its answer, outside
    the timing), in the readers' order."""
    timed: dict[int, tuple[float, int]] = {}
    for step in range(len(readers)):
        which = (turn + step) % len(readers)
        started = time.perf_counter()
        answer = readers[which]()
        seconds = time.perf_counter() - started
        timed[which] = (seconds, count(answer))
    return [timed[which] for which in range(len(readers))]
