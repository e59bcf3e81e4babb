"""Which rows drain now: a pure function of (pending rows per key, now, policy).

No I/O here, so every timing rule is tested by calling `plan_drain` with chosen values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum


@dataclass(frozen=True)
class DrainPolicy:
    """When a key's pending records are worth one trip to the sink."""

    batch_size: int = 50
    max_age: timedelta = timedelta(seconds=60)
    max_rows_per_cycle: int = 10_000

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        if self.max_rows_per_cycle < self.batch_size:
            raise ValueError("max_rows_per_cycle must be at least batch_size")


@dataclass(frozen=True)
class KeyBacklog:
    """What is pending for one key (a company): how many records, and since when."""

    key: str
    pending: int
    oldest_enqueued_at: datetime


class TakeReason(Enum):
    FULL_BATCH = "full batch"
    MAX_AGE = "max age"
    FORCED = "forced"


@dataclass(frozen=True)
class KeyTake:
    """Drain the `rows` oldest pending records of `key` in this cycle."""

    key: str
    rows: int
    reason: TakeReason


@dataclass(frozen=True)
class DrainPlan:
    takes: tuple[KeyTake, ...]
    truncated: bool  # more was due than one cycle may carry; run another cycle at once

    @property
    def rows(self) -> int:
        return sum(take.rows for take in self.takes)


def plan_drain(
    backlogs: Iterable[KeyBacklog],
    now: datetime,
    policy: DrainPolicy,
    *,
    force: bool = False,
) -> DrainPlan:
    """Choose what one drain cycle writes.

    - A key whose oldest record is at least `max_age` old drains everything it has: the aged
      record must go, and its younger siblings ride in the same transaction for free.
    - Otherwise a key with at least `batch_size` records drains whole batches; the remainder
      (fewer than a batch, all young) waits for more company or for age.
    - `force` drains everything (shutdown, `relay drain --once`).
    Oldest keys go first, and one cycle carries at most `max_rows_per_cycle` rows.
    """
    wanted: list[KeyTake] = []
    for backlog in sorted(backlogs, key=lambda b: (b.oldest_enqueued_at, b.key)):
        take = _take_for(backlog, now, policy, force)
        if take is not None:
            wanted.append(take)
    budget = policy.max_rows_per_cycle
    takes: list[KeyTake] = []
    truncated = False
    for take in wanted:
        if budget <= 0:
            truncated = True
            break
        if take.rows > budget:
            take = KeyTake(take.key, budget, take.reason)
            truncated = True
        takes.append(take)
        budget -= take.rows
    return DrainPlan(tuple(takes), truncated)


def _take_for(
    backlog: KeyBacklog, now: datetime, policy: DrainPolicy, force: bool
) -> KeyTake | None:
    if backlog.pending <= 0:
        return None
    if force:
        return KeyTake(backlog.key, backlog.pending, TakeReason.FORCED)
    if now - backlog.oldest_enqueued_at >= policy.max_age:
        return KeyTake(backlog.key, backlog.pending, TakeReason.MAX_AGE)
    full_batches = backlog.pending // policy.batch_size
    if full_batches:
        return KeyTake(backlog.key, full_batches * policy.batch_size, TakeReason.FULL_BATCH)
    return None
