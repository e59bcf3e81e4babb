"""An event a platform stream hands on goes the way of `POST /v1/events`: matched against the
company's webhooks and stored in the inbox with its deliveries before anything else happens.

Storing is pipelined: a stream hands its next event on as soon as this one is queued for the
inbox's next group commit (at most `MAX_PENDING` events wait at once, over all streams; then
the streams wait), instead of after its commit: one fsync per event would cap a company's
stream at a few hundred events a second. An event is still stored before anything is done
with it, in arrival order; one read but not yet committed when the process dies is lost as
one still in the socket's buffer would be (the platform does not replay either).

A repeat is dropped by the event's own id (the catalog's `id_path` for its type, e.g.
`callHistory._id`), remembered durably in the spool for `RELAY_IDEMPOTENCY_HOURS` with the
intake's caller ids (under a prefix of its own), not for seconds in memory. While the spool
cannot store an event (full, or failing), the stream waits and tries again: the platform
does not replay, so an event the relay has read is never given up.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from relay.errors import InputError
from relay.inbox.deliveries import EventInput, deliveries_for
from relay.inbox.store import Acceptance
from relay.intake.batching import AcceptBatcher
from relay.ops.metrics import PLATFORM_EVENTS
from relay.registry.cache import Registry
from spool import Backoff, Clock, SpoolError, utc_now

log = logging.getLogger(__name__)

# Caller ids of platform events: apart from the ids callers give `POST /v1/events`.
PLATFORM_ID_PREFIX = "platform:"
MAX_PLATFORM_ID_LENGTH = 150  # with the prefix and event name, within intake's id bound
STORE_RETRY = Backoff(initial=timedelta(seconds=0.5), maximum=timedelta(seconds=10))
MAX_PENDING = 512  # events queued for storing at once, over all streams


def platform_id(event: str, payload: Mapping[str, Any], id_path: str | None) -> str | None:
    """The event's own id at `id_path` (`callHistory._id`) as a caller id, or None when its
    type has no id path or this event lacks a usable id (then it is not deduplicated)."""
    if id_path is None:
        return None
    value: object = payload
    for key in id_path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_PLATFORM_ID_LENGTH:
        return None
    return f"{PLATFORM_ID_PREFIX}{event}:{text}"


class PlatformIntake:
    """Stores the events of every stream; `on_accepted` wakes the dispatcher."""

    def __init__(
        self,
        registry: Registry,
        accepts: AcceptBatcher,
        on_accepted: Callable[[], None],
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._registry = registry
        self._accepts = accepts
        self._on_accepted = on_accepted
        self._clock = clock
        self._slots = asyncio.Semaphore(MAX_PENDING)
        self._pending: set[asyncio.Task[None]] = set()

    async def receive(self, company_id: uuid.UUID, event: str, payload: Any) -> None:
        """Queue one event for storing; returns once it is queued, waiting while
        `MAX_PENDING` events are (so a spool that cannot store stops the streams)."""
        await self._slots.acquire()
        task = asyncio.create_task(self._store_and_count(company_id, event, payload))
        self._pending.add(task)
        task.add_done_callback(self._settled)

    async def finish(self) -> None:
        """Wait until every queued event is stored (a stop, after the streams closed)."""
        while self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("storing a platform event failed", exc_info=task.exception())

    async def _store_and_count(self, company_id: uuid.UUID, event: str, payload: Any) -> None:
        outcome = await self._store(company_id, event, payload)
        PLATFORM_EVENTS.labels(str(company_id), outcome).inc()

    async def _store(self, company_id: uuid.UUID, event: str, payload: Any) -> str:
        if not isinstance(payload, dict):
            log.warning(
                "platform event %s of company %s is not a JSON object (%s): dropped",
                event,
                company_id,
                type(payload).__name__,
            )
            return "malformed"
        snapshot = self._registry.snapshot
        caller_id = platform_id(event, payload, snapshot.id_paths.get(event))
        # A stable id: the same platform event is the same message wherever it is seen.
        event_id = str(uuid.uuid5(company_id, caller_id)) if caller_id else str(uuid.uuid4())
        try:
            deliveries = deliveries_for(
                snapshot, EventInput(company_id, event, payload, caller_id), event_id, self._clock()
            )
        except InputError as exc:
            log.warning("platform event %s of company %s dropped: %s", event, company_id, exc)
            return "malformed"
        if not deliveries:
            return "unmatched"
        acceptance = Acceptance(company_id, event_id, deliveries, caller_id)
        failures = 0
        while True:
            try:
                receipt = await self._accepts.accept(acceptance)
            except SpoolError as exc:  # full, or failing: wait, the platform will not resend
                failures += 1
                delay = STORE_RETRY.delay(failures, random.random()).total_seconds()
                log.error(
                    "platform event %s of company %s waits to be stored (try %d, next in "
                    "%.1f s): %s",
                    event,
                    company_id,
                    failures,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                continue
            if receipt.duplicate:
                return "duplicate"
            self._on_accepted()
            return "accepted"
