"""The dashboard's logs-per-hour chart, drawn on the server as SVG bars (no chart library,
nothing from a CDN): one bar per hour of the window, hours without rows drawn empty."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

HEIGHT = 120  # px of the tallest bar
BAR_WIDTH = 10


@dataclass(frozen=True)
class Bar:
    x: int
    height: int
    start: str  # ISO-8601 UTC hour
    total: int
    failures: int

    @property
    def failure_height(self) -> int:
        return 0 if self.total == 0 else round(self.height * self.failures / self.total)


def hourly_bars(buckets: Sequence[Mapping[str, Any]], since: datetime, hours: int) -> list[Bar]:
    """One bar per hour from `since`'s hour on, scaled to the busiest hour."""
    counted = {datetime.fromisoformat(b["start"]): b for b in buckets}
    first = since.replace(minute=0, second=0, microsecond=0)
    starts = [first + timedelta(hours=n) for n in range(hours)]
    busiest = max((int(b["total"]) for b in buckets), default=0) or 1
    bars = []
    for n, start in enumerate(starts):
        bucket = counted.get(start, {})
        total = int(bucket.get("total", 0))
        height = round(HEIGHT * total / busiest)
        failures = int(bucket.get("failures", 0))
        bars.append(Bar(n * BAR_WIDTH, height, start.isoformat(), total, failures))
    return bars
