"""Which rows drain now: a pure function of (pending rows per key, now, policy).

No I/O here, so every timing rule is tested by calling `plan_drain` with chosen values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
class DrainPlan:
    """Drain the `rows` oldest pending records now (0: nothing is due).

    `reasons` says why each pending key is in: its own due reason, or riding along.
    """

    rows: int
    reasons: Mapping[str, TakeReason]
    truncated: bool  # more is pending than one cycle may carry; run another cycle at once


NOTHING_DUE = DrainPlan(0, {}, truncated=False)


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
    A cycle carries at most `max_rows_per_cycle` records, the oldest first across all keys:
    a backlog drains in arrival order, and each cycle frees contiguous spool pages.
    """
    pending = [b for b in backlogs if b.pending > 0]
    due = {b.key: reason for b in pending if (reason := _due_reason(b, now, policy, force))}
    if not due:
        return NOTHING_DUE
    total = sum(b.pending for b in pending)
    reasons = {b.key: due.get(b.key, TakeReason.RIDE_ALONG) for b in pending}
    rows = min(total, policy.max_rows_per_cycle)
    return DrainPlan(rows, reasons, truncated=total > rows)


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
