"""Failed logins and bad tokens, limited per client address, so nobody can guess at speed.

Each address has a bucket of `burst` tries that refills at `per_second`; every failure
takes one. An empty bucket refuses every try from that address, a right one too (else a
guess that happens to be right would still tell itself apart), until a try has refilled.
The time comes from an injected clock, so tests drive it with freezegun.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from datetime import datetime

from relay.errors import InputError
from spool import Clock, utc_now

DEFAULT_BURST = 10
DEFAULT_PER_SECOND = 10 / 60  # ten failures a minute once the burst is spent
MAX_ADDRESSES = 10_000  # buckets kept; the least recently failing are forgotten first


class RateLimited(InputError):
    """429: too many failures from this address; `retry_after` seconds until the next try."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429, "authorization", f"too many failed attempts; retry in {retry_after} s"
        )
        self.retry_after = retry_after


class FailureLimiter:
    """The buckets of the addresses that failed lately; safe to use from any thread."""

    def __init__(
        self,
        *,
        burst: int = DEFAULT_BURST,
        per_second: float = DEFAULT_PER_SECOND,
        clock: Clock = utc_now,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.burst, self.per_second, self.clock = burst, per_second, clock
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, tuple[float, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """Raise `RateLimited` if `address` has no try left."""
        with self._lock:
            tries = self._tries(address, self.clock())
        if tries < 1:
            raise RateLimited(math.ceil((1 - tries) / self.per_second))

    def fail(self, address: str) -> None:
        """Count one failure of `address`."""
        with self._lock:
            now = self.clock()
            self._buckets[address] = (self._tries(address, now) - 1, now)
            self._buckets.move_to_end(address)
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)

    def _tries(self, address: str, now: datetime) -> float:
        kept = self._buckets.get(address)
        if kept is None:
            return float(self.burst)
        tries, since = kept
        refilled = tries + max(0.0, (now - since).total_seconds()) * self.per_second
        return min(float(self.burst), refilled)
