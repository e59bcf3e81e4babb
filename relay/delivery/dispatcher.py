"""The dispatcher: POSTs due deliveries, bounded in flight overall and per host.

When an attempt finishes, its outcome (delivery completed or rescheduled) and its execution
log record commit in ONE spool transaction. In-flight attempts are only in memory: after a
crash the inbox still holds them and they are simply due again (at least once, same
`webhook-id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import anyio.to_thread
import httpx

from relay import __version__
from relay.delivery.retry import RetryPolicy, is_success, parse_retry_after
from relay.delivery.signing import sign
from relay.delivery.transport.clients import HostClients
from relay.delivery.transport.guard import DestinationRefused
from relay.execution_log.record import ExecutionResult, logged_payload
from relay.inbox.deliveries import Delivery
from relay.inbox.store import EventInbox
from relay.ops.metrics import count_delivery
from relay.registry.cache import Registry
from spool import Clock, DurableQueue, ScheduledItem, utc_now

log = logging.getLogger(__name__)

USER_AGENT = f"relay/{__version__}"
RESPONSE_READ_LIMIT = 64 * 1024  # read (and discard) at most this much of an answer
IDLE_POLL = timedelta(seconds=1)
# Outcomes finishing this close together share one spool transaction. A log record dirties
# pages of the outbox table, its per-company index and the per-company counters; those pages
# are shared by the records of one transaction, so a longer gather makes each record cheaper
# (measured: 68 us of CPU per record at 4 per transaction, 48 us at 16) and intake meets
# fewer write locks. The slot is freed at once, so the wait costs no throughput; a crash in
# it means those deliveries are POSTed again (at least once, same `webhook-id`).
STORE_GATHER = timedelta(milliseconds=20)


@dataclass(frozen=True)
class DispatchConfig:
    timeout_seconds: float = 10.0
    max_in_flight: int = 64
    max_per_host: int = 8
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    is_logged: Callable[[str], bool] = lambda event: event == "call-history-was-created"
    log_payload_max_bytes: int = 64 * 1024


@dataclass(frozen=True)
class _Outcome:
    """What to store after an attempt: finish (next_at None) or retry at next_at, and the
    log record, if the event is logged and a POST was made."""

    item: ScheduledItem
    next_at: datetime | None
    record: ExecutionResult | None


@dataclass(frozen=True)
class AttemptOutcome:
    """What one POST produced."""

    status: int | None
    error: str | None
    duration_ms: int
    retry_after: timedelta | None
    finished_at: datetime

    @property
    def success(self) -> bool:
        return is_success(self.status)


class Dispatcher:
    def __init__(
        self,
        inbox: EventInbox,
        outbox: DurableQueue,
        registry: Registry,
        clients: HostClients,
        config: DispatchConfig,
        *,
        clock: Clock = utc_now,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.registry = registry
        self.clients = clients
        self.config = config
        self._clock = clock
        self._random_fraction = random_fraction
        self._request_extensions = {"timeout": httpx.Timeout(config.timeout_seconds).as_dict()}
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        # Outcomes decided but not yet in the spool: gathered for `STORE_GATHER` into one
        # transaction, or held while the spool cannot take them (disk full), so the attempt
        # is logged once and the receiver is not POSTed again for it. Never started again
        # meanwhile (`_busy`).
        self._unstored: dict[int, _Outcome] = {}
        self._store_timer: asyncio.TimerHandle | None = None
        self._store_failing = False
        self._per_host: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def wake(self) -> None:
        """Look for due deliveries now (safe from any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Start due deliveries as capacity allows, until `stop`."""
        self._loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            wait = IDLE_POLL
            try:
                self._store_unstored()
                if self.registry.loaded:
                    await self._start_due(self._clock())
                    wait = await self._until_next_due()
            except Exception:  # e.g. the spool unreadable for a moment: keep the loop alive
                log.exception("dispatcher could not read the inbox; trying again shortly")
                wait = IDLE_POLL
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait.total_seconds())

    async def run_due_once(self, now: datetime | None = None) -> int:
        """Start what is due at `now` and wait for those attempts (tests, `relay demo`)."""
        started = await self._start_due(now or self._clock())
        await self.drain_in_flight(timeout=None)
        self._store_unstored()
        return started

    async def stop(self, deadline_seconds: float) -> int:
        """Start nothing new; give attempts in flight until the deadline, then cancel them.

        A cancelled attempt stays in the inbox and is tried again at the next start.
        Returns how many were cancelled.
        """
        self._stopping = True
        self._wake.set()
        cancelled = await self.drain_in_flight(timeout=deadline_seconds)
        self._store_unstored()
        if self._unstored:
            log.warning(
                "%d attempt outcomes could not be stored; those deliveries stay in the inbox "
                "and will be POSTed again after the restart",
                len(self._unstored),
            )
        return cancelled

    async def drain_in_flight(self, timeout: float | None) -> int:
        tasks = list(self._in_flight.values())
        if not tasks:
            return 0
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            log.warning("%d deliveries in flight handed back to the inbox", len(pending))
        return len(pending)

    # -- scheduling ----------------------------------------------------------------------------

    def _saturated_hosts(self) -> list[str]:
        return [h for h, n in self._per_host.items() if n >= self.config.max_per_host]

    def _busy(self) -> set[int]:
        """Items not to start now: in flight, or done with an outcome not yet stored."""
        return set(self._in_flight) | set(self._unstored)

    async def _start_due(self, now: datetime) -> int:
        capacity = self.config.max_in_flight - len(self._in_flight)
        if capacity <= 0:
            return 0
        exclude, saturated = self._busy(), self._saturated_hosts()
        items = await anyio.to_thread.run_sync(
            lambda: self.inbox.queue.due(now, capacity, exclude=exclude, exclude_keys=saturated)
        )
        started = 0
        for item in items:
            if self._per_host[item.key] >= self.config.max_per_host:
                continue  # this host is full: the item waits for one of its slots
            self._per_host[item.key] += 1
            task = asyncio.create_task(self._attempt(item))
            self._in_flight[item.seq] = task
            task.add_done_callback(partial(self._finished, item))
            started += 1
        return started

    def _finished(self, item: ScheduledItem, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(item.seq, None)
        self._per_host[item.key] -= 1
        if self._per_host[item.key] <= 0:
            del self._per_host[item.key]
        self._wake.set()

    async def _until_next_due(self) -> timedelta:
        exclude, saturated = self._busy(), self._saturated_hosts()
        if len(self._in_flight) >= self.config.max_in_flight:
            return IDLE_POLL  # a finishing attempt wakes the loop
        next_due = await anyio.to_thread.run_sync(
            lambda: self.inbox.queue.next_due_at(exclude=exclude, exclude_keys=saturated)
        )
        if next_due is None:
            return IDLE_POLL
        return max(timedelta(0), min(IDLE_POLL, next_due - self._clock()))

    # -- one attempt ---------------------------------------------------------------------------

    async def _attempt(self, item: ScheduledItem) -> None:
        """One attempt; whatever goes wrong, the item ends finished or rescheduled, never
        due again at once (that would POST in a tight loop)."""
        try:
            await self._attempt_unguarded(item)
        except asyncio.CancelledError:
            raise  # shutdown: the item stays due and is resumed at the next start
        except Exception:
            log.exception("delivery attempt for inbox item %s failed unexpectedly", item.id)
            next_at = self.config.retry.next_attempt_at(
                attempt=item.attempts + 1,
                status=None,
                retry_after=None,
                now=self._clock(),
                random_fraction=self._random_fraction(),
            )
            count_delivery("retry" if next_at else "failed", retry=next_at is not None)
            self._record(_Outcome(item, next_at, None))

    def _record(self, outcome: _Outcome) -> None:
        """Hand the outcome over for storing; the attempt's slot is free from now on."""
        self._unstored[outcome.item.seq] = outcome
        if self._store_timer is None:
            loop = asyncio.get_running_loop()
            self._store_timer = loop.call_later(STORE_GATHER.total_seconds(), self._store_unstored)

    def _store_unstored(self) -> None:
        """One spool transaction for the outcomes gathered, run on the event loop's thread.

        On purpose not in a worker thread: while a worker holds the spool's write lock, each
        SQLite call hands the GIL to this busy loop and waits up to the switch interval
        (5 ms) to get it back, so the lock, which intake's process needs too, was held for
        up to 100 ms (measured). Here the transaction runs without those hand-offs, in
        about a millisecond (mostly the fsync), while the loop waits. If the spool cannot
        take them, they stay held and the next pass of the loop tries again.
        """
        if self._store_timer is not None:
            self._store_timer.cancel()
            self._store_timer = None
        if not self._unstored:
            return
        outcomes = list(self._unstored.values())
        try:
            self._complete(outcomes)
        except Exception as exc:  # SpoolError (disk full ...) or a bug: never lose them
            if not self._store_failing:
                log.error(
                    "could not store the outcomes of %d attempts (%s); holding them in memory "
                    "until the spool takes them",
                    len(outcomes),
                    exc,
                )
            self._store_failing = True
            return
        if self._store_failing:
            log.info("stored %d attempt outcomes held back", len(outcomes))
        self._store_failing = False
        self._unstored.clear()  # nothing was added meanwhile: this ran on the loop's thread

    async def _attempt_unguarded(self, item: ScheduledItem) -> None:
        try:
            delivery = Delivery.decode(item.payload)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("inbox item %s is unreadable and is dropped: %s", item.id, exc)
            count_delivery("dropped")
            self._record(_Outcome(item, None, None))
            return
        if delivery.earlier_attempts:  # a resend, asked for now: signed with the secret of now
            await anyio.to_thread.run_sync(self.registry.refresh_if_changed)
        subscription = self.registry.snapshot.subscription(delivery.webhook_id, delivery.event_type)
        if subscription is None:
            log.info(
                "delivery %s dropped: webhook %s is disabled, deleted or unsubscribed",
                delivery.id,
                delivery.webhook_id,
            )
            count_delivery("dropped")
            self._record(_Outcome(item, None, None))
            return
        attempt = item.attempts + 1
        outcome = await self._post(delivery, subscription.secret)
        next_at = None
        if not outcome.success:
            next_at = self.config.retry.next_attempt_at(
                attempt=attempt,
                status=outcome.status,
                retry_after=outcome.retry_after,
                now=outcome.finished_at,
                random_fraction=self._random_fraction(),
            )
        # The retry budget counts this delivery's attempts; the log goes on numbering a
        # message's attempts across resends.
        logged_attempt = delivery.earlier_attempts + attempt
        record = self._execution(delivery, logged_attempt, outcome)
        _log_attempt(delivery, logged_attempt, outcome, next_at)
        result = "success" if outcome.success else "retry" if next_at else "failed"
        count_delivery(result, seconds=outcome.duration_ms / 1000, retry=next_at is not None)
        self._record(_Outcome(item, next_at, record))

    async def _post(self, delivery: Delivery, secret: str | None) -> AttemptOutcome:
        timestamp = int(self._clock().timestamp())
        body = delivery.body.encode()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
        }
        if secret:
            headers["webhook-signature"] = sign(secret, delivery.id, timestamp, body)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        retry_after: str | None = None
        try:
            request = httpx.Request(
                "POST",
                _parsed_url(delivery.url),
                content=body,
                headers=headers,
                extensions=self._request_extensions,
            )
            async with self.clients.send(delivery.host, request) as response:
                status, retry_after = response.status_code, response.headers.get("retry-after")
                await _discard(response)
            if not is_success(status):
                error = f"HTTP {status}"
        except DestinationRefused as exc:
            error = str(exc)  # says which address and why; retried like any failed connect
        except httpx.TimeoutException as exc:
            error = f"timeout after {self.config.timeout_seconds:g} s ({type(exc).__name__})"
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, UnicodeError) as exc:
            # InvalidURL/idna errors: a URL saved before validation refused it; still logged.
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        finished_at = self._clock()
        return AttemptOutcome(
            status=status,
            error=error,
            duration_ms=int((time.perf_counter() - started) * 1000),
            retry_after=parse_retry_after(retry_after, finished_at),
            finished_at=finished_at,
        )

    def _execution(
        self, delivery: Delivery, attempt: int, outcome: AttemptOutcome
    ) -> ExecutionResult | None:
        if not self.config.is_logged(delivery.event_type):
            return None
        return ExecutionResult(
            company_id=delivery.company_id,
            webhook_id=delivery.webhook_id,
            event_id=delivery.event_db_id,
            event_type=delivery.event_type,
            message_id=delivery.id,
            attempt=attempt,
            status="success" if outcome.success else "failed",
            response_status=outcome.status,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
            phone_number=delivery.phone_number,
            request_payload=logged_payload(delivery.body, self.config.log_payload_max_bytes),
            created_at=outcome.finished_at,
        )

    def _complete(self, outcomes: list[_Outcome]) -> None:
        """Finish or reschedule each delivery and append its log record: one transaction."""
        queue = self.inbox.queue
        appends = [
            (outcome.record.spool_key(), outcome.record.spool_payload(), str(uuid.uuid4()))
            for outcome in outcomes
            if outcome.record is not None
        ]  # encoded before the transaction, so the write lock is held for SQL only

        def finish(conn: sqlite3.Connection) -> None:
            for outcome in outcomes:
                if outcome.next_at is None:
                    queue.complete_in(conn, outcome.item)
                else:
                    queue.reschedule_in(conn, outcome.item, outcome.next_at)
            if appends:
                self.outbox.append_many_in(conn, appends)

        self.inbox.spool.write(finish)


@functools.lru_cache(maxsize=4096)
def _parsed_url(url: str) -> httpx.URL:
    """A webhook's URL parsed once, not on every POST (httpx's parser was 8% of the
    dispatcher's CPU); `httpx.URL` is immutable, so requests can share it."""
    return httpx.URL(url)


async def _discard(response: httpx.Response) -> None:
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= RESPONSE_READ_LIMIT:
            break


def _log_attempt(
    delivery: Delivery, attempt: int, outcome: AttemptOutcome, next_at: datetime | None
) -> None:
    if outcome.success:
        log.debug("delivered %s to %s (attempt %d)", delivery.id, delivery.url, attempt)
        return
    then = f"retry at {next_at.isoformat(timespec='seconds')}" if next_at else "giving up"
    log.info(
        "delivery %s to %s failed (attempt %d): %s; %s",
        delivery.id,
        delivery.url,
        attempt,
        outcome.error,
        then,
    )
