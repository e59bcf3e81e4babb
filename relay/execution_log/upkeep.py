"""Upkeep of the execution log beside the drain job: notice the database coming back, and
run the daily retention job.

The drain backs off after transient failures (1 s doubling to 60 s), which is kind to a
database that is struggling but, after an outage, left a backlog waiting up to a minute
(measured: 45 s after PostgreSQL restarted). While backing off, a `SELECT 1` every
`PROBE_SECONDS` finds out sooner, and the drain tries at once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Engine

from relay.execution_log.retention import RetentionError, apply_retention
from spool import DrainScheduler

log = logging.getLogger(__name__)

PROBE_SECONDS = 2.0
RETENTION_EVERY = timedelta(days=1)
RETENTION_RETRY = timedelta(hours=1)


class LogMaintenance:
    def __init__(
        self, scheduler: DrainScheduler, engine: Engine, *, retention_days: int, now: datetime
    ) -> None:
        self._scheduler = scheduler
        self._engine = engine
        self._retention_days = retention_days
        self._next_retention = now  # once at start, then daily

    def tick(self, now: datetime) -> None:
        """Called every `PROBE_SECONDS` by the drain's owner."""
        drainer = self._scheduler.drainer
        backing_off = drainer.retry_at is not None and now < drainer.retry_at
        if backing_off and self._database_answers() and drainer.retry_soon():
            log.info("the database answers again: draining the execution log now")
            self._scheduler.wake()
        if now >= self._next_retention:
            self._next_retention = now + self._run_retention(now)

    def _database_answers(self) -> bool:
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def _run_retention(self, now: datetime) -> timedelta:
        """The retention job (`relay/retention.py`); how long until the next run."""
        try:
            apply_retention(self._engine, now, self._retention_days)
        except (RetentionError, sa.exc.SQLAlchemyError) as exc:
            log.warning("retention job failed, next try in an hour: %s", exc)
            return RETENTION_RETRY
        return RETENTION_EVERY
