"""When a failed delivery is tried again: a pure function of the attempt and its answer."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relay.settings import RelaySettings

NOT_RETRIED_4XX_EXCEPT = (408, 429)
MAX_RETRY_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential-ish schedule with jitter; 410 and most 4xx are final.

    `schedule[n-1]` is the wait after the n-th failed attempt; past its end the last entry
    repeats until `max_attempts` attempts have been made.
    """

    schedule: tuple[timedelta, ...] = (
        timedelta(seconds=5),
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(minutes=30),
    )
    max_attempts: int = 6
    jitter: float = 0.1

    @classmethod
    def from_settings(cls, settings: RelaySettings) -> RetryPolicy:
        waits = tuple(timedelta(seconds=wait) for wait in settings.retry_schedule_seconds)
        return cls(schedule=waits, max_attempts=settings.max_attempts)

    def __post_init__(self) -> None:
        if not self.schedule or self.max_attempts < 1 or not 0 <= self.jitter < 1:
            raise ValueError("need a schedule, max_attempts >= 1 and jitter in [0, 1)")

    def next_attempt_at(
        self,
        *,
        attempt: int,
        status: int | None,
        retry_after: timedelta | None,
        now: datetime,
        random_fraction: float,
    ) -> datetime | None:
        """When to try again after attempt number `attempt` failed; None: give up."""
        if not is_retryable(status) or attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            return now + min(max(retry_after, timedelta(0)), MAX_RETRY_AFTER)
        base = self.schedule[min(attempt, len(self.schedule)) - 1]
        return now + base * (1 - self.jitter * random_fraction)


def is_success(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def is_retryable(status: int | None) -> bool:
    """No answer, 5xx, 408 and 429 are worth another try; 410 Gone and other 4xx are not."""
    if status is None:
        return True
    if 400 <= status < 500:
        return status in NOT_RETRIED_4XX_EXCEPT
    return not is_success(status)


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # str.isdigit() alone also takes '²'
        cap = int(MAX_RETRY_AFTER.total_seconds())
        return timedelta(seconds=cap if len(text) > len(str(cap)) else min(int(text), cap))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when - now
