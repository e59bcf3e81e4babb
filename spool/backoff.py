"""Retry delays after a failed drain: exponential, capped, with jitter (pure arithmetic)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Backoff:
    """`initial * multiplier**(failures-1)` capped at `maximum`, shortened by up to `jitter`.

    Jitter spreads the retries of many relays that lost the same database at the same moment.
    """

    initial: timedelta = timedelta(seconds=1)
    maximum: timedelta = timedelta(seconds=60)
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.initial <= timedelta(0) or self.maximum < self.initial:
            raise ValueError("need 0 < initial <= maximum")

    def delay(self, failures: int, random_fraction: float) -> timedelta:
        """Delay before the next try after `failures` consecutive failures (>= 1).

        `random_fraction` in [0, 1) comes from the caller, so tests choose it.
        """
        if failures < 1:
            raise ValueError("failures must be at least 1")
        exponent = min(failures - 1, 64)  # beyond this the cap applies anyway
        base = min(
            self.maximum.total_seconds(), self.initial.total_seconds() * self.multiplier**exponent
        )
        return timedelta(seconds=base * (1 - self.jitter * random_fraction))
