"""One drain cycle: plan, fetch, write in one sink transaction, then delete from the spool.

Spool rows are deleted only after the sink committed, so a crash at any point leaves them to
be written again, and the sink's idempotence turns that into exactly-once. A cycle holds the
spool's drain lock throughout, so another process (a purge, a second drainer) never sees rows
that are committed to the sink but not yet deleted from the spool.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path

from spool.backoff import Backoff
from spool.clock import Clock, utc_now
from spool.database import SpoolDatabase
from spool.errors import ConfigSinkError, RecordSinkError, TransientSinkError
from spool.locks import FileLock
from spool.policy import DrainPolicy, plan_drain
from spool.queue import DurableQueue, SpoolRecord
from spool.sink import Sink

log = logging.getLogger(__name__)


class Outcome(Enum):
    IDLE = "idle"  # nothing was due
    WRITTEN = "written"
    BACKING_OFF = "backing off"  # an earlier failure's retry time has not come yet
    TRANSIENT_ERROR = "transient error"
    CONFIG_ERROR = "configuration error"
    LOCKED = "locked"  # another process holds the drain lock: this cycle was skipped


def drain_lock(db: SpoolDatabase) -> FileLock:
    """The lock a drain cycle holds on `db`, a file beside it (`<spool>.drain.lock`)."""
    return FileLock(Path(f"{db.path}.drain.lock"))


@dataclass(frozen=True)
class DrainReport:
    """What one cycle did, for logs, tests and the CLI."""

    outcome: Outcome
    rows_written: int = 0
    keys: int = 0
    transactions: int = 0
    dead_lettered: int = 0
    more_due: bool = False
    retry_at: datetime | None = None
    error: str | None = None


class Drainer:
    """Moves due records from a queue to a sink, isolating bad records and backing off."""

    def __init__(
        self,
        queue: DurableQueue,
        sink: Sink,
        policy: DrainPolicy,
        *,
        backoff: Backoff | None = None,
        config_retry: timedelta = timedelta(seconds=60),
        clock: Clock = utc_now,
        random_fraction: Callable[[], float] = random.random,
        lock_wait_seconds: float = 1.0,
    ) -> None:
        self.queue = queue
        self.sink = sink
        self.policy = policy
        self.backoff = backoff or Backoff()
        self.config_retry = config_retry
        self._clock = clock
        self._random_fraction = random_fraction
        self.lock = drain_lock(queue.db)
        self.lock_wait_seconds = lock_wait_seconds
        self._failures = 0
        self._retry_at: datetime | None = None
        self._transient_backoff = False

    @property
    def retry_at(self) -> datetime | None:
        """When the next try after a failure is allowed; None when healthy."""
        return self._retry_at

    def retry_soon(self) -> bool:
        """The sink's database answered something else: end a transient failure's backoff
        so the backlog drains now, not when a minute-long backoff runs out. Configuration
        errors keep their slow retry. True if a wait was cut short."""
        if self._retry_at is None or not self._transient_backoff:
            return False
        self._retry_at = None
        return True

    def drain_once(self, now: datetime | None = None, *, force: bool = False) -> DrainReport:
        """Run one cycle at `now` (default: the clock). `force` drains everything now,
        ignoring batch size, age and backoff.

        If another process holds the drain lock for `lock_wait_seconds`, the cycle is
        skipped (`Outcome.LOCKED`): the next one comes soon, and nothing is lost by waiting.
        """
        now = now or self._clock()
        if not force and self._retry_at is not None and now < self._retry_at:
            return DrainReport(Outcome.BACKING_OFF, retry_at=self._retry_at)
        if not self.lock.acquire(self.lock_wait_seconds):
            log.debug("drain cycle skipped: another process holds %s", self.lock.path)
            return DrainReport(Outcome.LOCKED, error=f"{self.lock.path} is held elsewhere")
        try:
            return self._drain_locked(now, force)
        finally:
            self.lock.release()

    def _drain_locked(self, now: datetime, force: bool) -> DrainReport:
        plan = plan_drain(self.queue.backlog(), now, self.policy, force=force)
        if not plan.rows:
            return DrainReport(Outcome.IDLE)
        records = self.queue.fetch_oldest(plan.rows)
        keys = len({record.key for record in records})
        started = time.perf_counter()
        try:
            transactions, dead = self._write_isolating(records)
        except TransientSinkError as exc:
            return self._failed(now, Outcome.TRANSIENT_ERROR, exc, len(records))
        except ConfigSinkError as exc:
            return self._failed(now, Outcome.CONFIG_ERROR, exc, len(records))
        self._failures, self._retry_at = 0, None
        log.debug(
            "drain cycle: %d rows, %d keys, %d transactions, %d dead letters, %.0f ms",
            len(records) - dead,
            keys,
            transactions,
            dead,
            (time.perf_counter() - started) * 1000,
        )
        return DrainReport(
            Outcome.WRITTEN,
            rows_written=len(records) - dead,
            keys=keys,
            transactions=transactions,
            dead_lettered=dead,
            more_due=plan.truncated,
        )

    def _write_isolating(self, records: Sequence[SpoolRecord]) -> tuple[int, int]:
        """Write records; isolate bad ones into dead letters, write the rest.

        Records the sink names are buried at once; an anonymous record error (the database
        refused the batch) is bisected until each bad record is alone. Returns (sink
        transactions committed, records dead-lettered). Good parts are removed from the spool
        as soon as they commit, so progress survives a later transient failure.
        """
        pending = list(records)
        dead = 0
        while pending:  # bounded: every pass writes everything or buries at least one record
            try:
                self.sink.write(pending)
            except RecordSinkError as exc:
                named = [r for r in pending if r.id in exc.rejected]
                if named:
                    for record in named:
                        self._bury(record, exc.rejected[record.id])
                    dead += len(named)
                    pending = [r for r in pending if r.id not in exc.rejected]
                    continue
                if len(pending) == 1:
                    self._bury(pending[0], str(exc))
                    return 0, dead + 1
                middle = len(pending) // 2
                left_commits, left_dead = self._write_isolating(pending[:middle])
                right_commits, right_dead = self._write_isolating(pending[middle:])
                return left_commits + right_commits, dead + left_dead + right_dead
            self.queue.remove(pending)
            return 1, dead
        return 0, dead

    def _bury(self, record: SpoolRecord, reason: str) -> None:
        log.error(
            "dead letter: record %s (key %s) refused by the sink: %s",
            record.id,
            record.key,
            reason,
        )
        self.queue.dead_letter(record, reason)

    def _failed(
        self, now: datetime, outcome: Outcome, exc: Exception, attempted: int
    ) -> DrainReport:
        self._failures += 1
        self._transient_backoff = outcome is Outcome.TRANSIENT_ERROR
        if outcome is Outcome.CONFIG_ERROR:
            delay = self.config_retry
        else:
            delay = self.backoff.delay(self._failures, self._random_fraction())
        self._retry_at = now + delay
        pending = self.queue.stats().pending
        level = logging.ERROR if outcome is Outcome.CONFIG_ERROR else logging.WARNING
        log.log(
            level,
            "drain failed (%s, %d in a row): %s; %d rows stay in the spool "
            "(%d in this batch); next try in %.1f s at %s",
            outcome.value,
            self._failures,
            exc,
            pending,
            attempted,
            delay.total_seconds(),
            self._retry_at.isoformat(timespec="seconds"),
        )
        return DrainReport(outcome, retry_at=self._retry_at, error=str(exc))
