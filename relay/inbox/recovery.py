"""Recovering a webhook: resend every message that failed for good to it in a window.

`start_recovery` records a job; a `RecoveryRunner` (a small loop the relay's runtime runs,
or `relay jobs run`) works through it in the background, a batch at a time: one page of
the webhook's failed attempts in the window (the execution-log search, newest first, rows
still in the spool included), then each of those messages whose last attempt to the
webhook failed and which has nothing scheduled for it any more is resent. The batch's
resends, the per-job record of the messages resent and the job's progress commit in one
spool transaction (relay/inbox/recovery_jobs.py): a job resumes after a crash and never
resends a message twice.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Engine

from relay.errors import InputError
from relay.execution_log.inputs import Window
from relay.execution_log.search import Companies, ExecutionQuery, search_executions
from relay.inbox.messages import MessageState, message_states
from relay.inbox.recovery_jobs import RecoveryJob, RecoveryJobs
from relay.inbox.resend import Resend, WebhookTarget, prepare_resend, target_webhook, usable_webhook
from relay.inbox.store import EventInbox
from spool import Clock, DurableQueue, SpoolError, utc_now

log = logging.getLogger(__name__)

RECOVERABLE = ("failed",)
BATCH_MESSAGES = 100  # failed attempts looked at per batch (one page of the search)
IDLE_SECONDS = 1.0


def start_recovery(
    engine: Engine,
    jobs: RecoveryJobs,
    webhook_id: uuid.UUID,
    *,
    since: datetime,
    until: datetime | None = None,
    status: str = "failed",
    companies: Companies = None,
    clock: Clock = utc_now,
) -> RecoveryJob:
    """Record a job recovering `webhook_id`'s failures in [since, until) (until: now)."""
    if status not in RECOVERABLE:
        raise InputError(422, "status", f"must be one of {', '.join(RECOVERABLE)}")
    window = Window.of(since, until, clock())
    with engine.connect() as conn:
        webhook = usable_webhook(conn, webhook_id, companies)
    return jobs.create(webhook_id, webhook.company_id, window.since, window.until, status)


def job_status(jobs: RecoveryJobs, job_id: str, *, companies: Companies = None) -> RecoveryJob:
    job = jobs.get(job_id)
    if job is None or (companies is not None and job.company_id not in companies):
        raise InputError(404, "job_id", "no such job")
    return job


class RecoveryRunner:
    """Works through unfinished recovery jobs, a batch per job per pass."""

    def __init__(
        self,
        engine: Engine,
        inbox: EventInbox,
        outbox: DurableQueue,
        jobs: RecoveryJobs,
        *,
        batch_size: int = BATCH_MESSAGES,
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.inbox = inbox
        self.outbox = outbox
        self.jobs = jobs
        self.batch_size = batch_size
        self._clock = clock

    def run(self, stop: threading.Event, *, idle_seconds: float = IDLE_SECONDS) -> None:
        """Until `stop` is set: batches while there is work, else a look every second."""
        while not stop.is_set():
            if not self.run_once():
                stop.wait(idle_seconds)

    def run_once(self) -> bool:
        """One batch of each unfinished job; False when there was none to do or every one
        failed for a passing reason (the database or the spool unavailable: retried)."""
        progressed = False
        for job in self.jobs.unfinished():
            try:
                self._batch(job)
                progressed = True
            except InputError as exc:  # the webhook was deleted or disabled since
                log.warning("recovery job %s stops: %s", job.id, exc)
                self.jobs.fail(job.id, str(exc))
            except (sa.exc.SQLAlchemyError, SpoolError) as exc:
                log.warning("recovery job %s paused, trying again shortly: %s", job.id, exc)
        return progressed

    def _batch(self, job: RecoveryJob) -> None:
        query = ExecutionQuery(
            webhook_id=job.webhook_id,
            status="failed",
            since=job.since,
            until=job.until,
            limit=self.batch_size,
            cursor=job.cursor,
        )
        page = search_executions(self.engine, self.outbox, query, clock=self._clock)
        message_ids = list(dict.fromkeys(i.message_id for i in page.items if i.message_id))
        states = message_states(
            self.engine, self.inbox, self.outbox, message_ids, webhook_id=job.webhook_id
        )
        with self.engine.connect() as conn:  # deleted or disabled since: the job stops
            usable_webhook(conn, job.webhook_id, frozenset({job.company_id}))
        targets = _Targets(self.engine, job)
        now = self._clock()
        resends: list[Resend] = []
        for state in states.values():
            if not _failed_for_good(state, job.webhook_id):
                continue
            try:  # no longer subscribed to the message's event, no body kept: skipped
                prepared = prepare_resend(state, targets.for_message(state), now)
            except InputError as exc:
                log.info("recovery job %s skips %s: %s", job.id, state.message_id, exc)
                continue
            if isinstance(prepared, Resend):
                resends.append(prepared)
        self.inbox.spool.write(
            lambda conn: self._store(conn, job, page.next_cursor, resends, len(page.items))
        )

    def _store(
        self,
        conn: sqlite3.Connection,
        job: RecoveryJob,
        cursor: str | None,
        resends: list[Resend],
        scanned: int,
    ) -> None:
        """The batch's resends, each message at most once per job, and the job's progress:
        one transaction."""
        sent = 0
        for resend in resends:
            if self.jobs.claim_in(conn, job.id, resend.delivery.id):
                resend.store_in(conn, self.inbox)
                sent += 1
        self.jobs.advance_in(conn, job.id, cursor=cursor, scanned=scanned, sent=sent)


def _failed_for_good(state: MessageState, webhook_id: uuid.UUID) -> bool:
    """The message's last attempt to the webhook failed, and nothing more is scheduled."""
    attempts = state.attempts_to(webhook_id)
    return bool(attempts) and attempts[-1].status == "failed" and not state.scheduled_to(webhook_id)


class _Targets:
    """The job's webhook as each event type of its messages needs it, looked up once."""

    def __init__(self, engine: Engine, job: RecoveryJob) -> None:
        self._engine = engine
        self._job = job
        self._by_event: dict[str, WebhookTarget] = {}

    def for_message(self, state: MessageState) -> WebhookTarget:
        event_type = state.attempts[-1].event_type or ""
        if event_type not in self._by_event:
            self._by_event[event_type] = target_webhook(
                self._engine, self._job.webhook_id, self._job.company_id, event_type
            )
        return self._by_event[event_type]
