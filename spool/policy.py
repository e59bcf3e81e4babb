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
    RIDE_ALONG = "ride along"  # not due, but a transaction happens anyway


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

    A key is due when its oldest record is at least `max_age` old, or when it holds at least
    `batch_size` records; `force` makes every key due (shutdown, `relay drain --once`).
    Nothing is written until some key is due. Once one is, the cycle's single transaction
    also carries every other pending record: a row riding along in a commit that happens
    anyway costs nothing, while waiting would cost a commit of its own later. That is how
    100 quiet companies cost one commit a minute rather than one each.
    Due keys go first, oldest first, and one cycle carries at most `max_rows_per_cycle` rows.
    """
    ordered = sorted(
        (b for b in backlogs if b.pending > 0), key=lambda b: (b.oldest_enqueued_at, b.key)
    )
    reasons = {b.key: _due_reason(b, now, policy, force) for b in ordered}
    if not any(reasons.values()):
        return DrainPlan((), truncated=False)
    due_first = sorted(ordered, key=lambda b: reasons[b.key] is None)  # stable: oldest first
    budget = policy.max_rows_per_cycle
    takes: list[KeyTake] = []
    for backlog in due_first:
        if budget <= 0:
            return DrainPlan(tuple(takes), truncated=True)
        rows = min(backlog.pending, budget)
        takes.append(KeyTake(backlog.key, rows, reasons[backlog.key] or TakeReason.RIDE_ALONG))
        budget -= rows
    truncated = sum(b.pending for b in ordered) > policy.max_rows_per_cycle
    return DrainPlan(tuple(takes), truncated)


def _due_reason(
    backlog: KeyBacklog, now: datetime, policy: DrainPolicy, force: bool
) -> TakeReason | None:
    if force:
        return TakeReason.FORCED
    if now - backlog.oldest_enqueued_at >= policy.max_age:
        return TakeReason.MAX_AGE
    if backlog.pending >= policy.batch_size:
        return TakeReason.FULL_BATCH
    return None
