"""The platform's event streams: one socket.io connection per company, kept open, reconnected
with backoff, and matched to the registry's wishes by `PlatformStreams.apply`.

Each company has one asyncio task that connects, waits for the connection to end, disposes
of it, waits (`retry_delay`), and connects again. So a company never has two connections, a
failed attempt leaves nothing open, and no company is reconnected unless its connection
ended or its url or token changed. Which events are handed on is read per event from the
stream's current target: changing the subscription never touches the connection or its
handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random as _random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import spool
from relay.intake.platform.connection import Refused, Unreachable, open_connection, safe_text
from relay.ops import redaction

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
RECONNECT_JITTER_SECONDS = 0.5
"""A dropped connection is tried again within this (or `backoff.initial`, if shorter): a
platform restart drops every company at once, and they need not all knock at once."""
REFUSED_SPREAD = 0.1
"""A refused stream retries between 1 and 1.1 times `refused_retry_seconds` after the refusal,
so that the companies a platform refused all at once do not come back all at once."""

DEFAULT_BACKOFF = spool.Backoff(
    initial=timedelta(seconds=1), maximum=timedelta(seconds=60), jitter=0.5
)


@dataclass(frozen=True)
class StreamTarget:
    """What one company's connection should be."""

    company_id: uuid.UUID
    url: str  # e.g. https://socket.3c.plus
    token: str = field(repr=False)  # the company's platform token: never logged, nor shown
    events: frozenset[str]  # only these event names are handed on; others are ignored


class StreamState(enum.Enum):
    """What a company's stream is doing; the values are what operators see."""

    CONNECTING = "connecting"  # opened, no outcome yet
    CONNECTED = "connected"
    REFUSED = "refused"  # the platform refused the token; retried after a long wait
    DISCONNECTED = "disconnected"  # lost or unreachable; retried with backoff


@dataclass(frozen=True)
class StreamStatus:
    """What one company's stream is doing, for logs, the CLI, readiness and metrics."""

    state: StreamState
    since: datetime  # when it entered this state (the injected clock)
    detail: str | None  # the refusal's message, or the last connect error; never the token
    reconnects: int  # connections established after the first
    events_received: int  # events handed on (those in the target's events)
    last_event_at: datetime | None
    disconnected_seconds: float  # total time not connected since the stream was opened


OnEvent = Callable[[uuid.UUID, str, Any], Awaitable[None]]
"""Awaited for each event handed on: (company, event name, payload). A company's events come
one at a time in arrival order; while it runs, that company's connection is not read."""

OnState = Callable[[uuid.UUID, StreamStatus], None]
"""Called on each state change of a company's stream, with its new status."""


class Ending(enum.Enum):
    """How a connection attempt ended: what decides the wait before the next one."""

    DROPPED = "dropped"  # it was connected, then the connection ended
    UNREACHABLE = "unreachable"
    REFUSED = "refused"


def retry_delay(
    ending: Ending,
    failures: int,
    *,
    backoff: spool.Backoff,
    refused_retry_seconds: float,
    random_fraction: float,
) -> float:
    """Seconds before the next attempt (pure: the tests check it without waiting).

    A dropped connection is tried again at once, but for a jitter below
    `RECONNECT_JITTER_SECONDS`; `failures` consecutive unreachable attempts back off
    exponentially to the cap; a refusal waits `refused_retry_seconds` and up to
    `REFUSED_SPREAD` more, never less.
    """
    if ending is Ending.DROPPED:
        spread = min(RECONNECT_JITTER_SECONDS, backoff.initial.total_seconds())
        return spread * random_fraction
    if ending is Ending.REFUSED:
        return refused_retry_seconds * (1 + REFUSED_SPREAD * random_fraction)
    return backoff.delay(failures, random_fraction).total_seconds()


@dataclass(frozen=True)
class _Policy:
    """What every stream of one `PlatformStreams` shares: its callbacks and its timing."""

    on_event: OnEvent
    on_state: OnState
    backoff: spool.Backoff
    refused_retry_seconds: float
    clock: spool.Clock
    random: Callable[[], float]
    connect_timeout: float


class PlatformStreams:
    """Every company's stream. `apply` opens, closes and changes them; `close` ends all.

    Runs on one asyncio loop; `statuses` may be read from it at any time.
    """

    def __init__(
        self,
        on_event: OnEvent,
        on_state: OnState,
        *,
        backoff: spool.Backoff = DEFAULT_BACKOFF,
        refused_retry_seconds: float = 300.0,
        clock: spool.Clock = spool.utc_now,
        random: Callable[[], float] = _random.random,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        if refused_retry_seconds <= 0 or connect_timeout <= 0:
            raise ValueError("refused_retry_seconds and connect_timeout must be positive")
        self._policy = _Policy(
            on_event, on_state, backoff, refused_retry_seconds, clock, random, connect_timeout
        )
        self._streams: dict[uuid.UUID, _Stream] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    async def apply(self, targets: Mapping[uuid.UUID, StreamTarget]) -> None:
        """Make the open streams match `targets`: open the new ones, close the ones gone,
        reconnect those whose url or token changed, and for those whose events alone changed
        just change the event set (no reconnect).

        Returns once the streams to close are closed (their sockets too); the new ones are
        connecting in the background.
        """
        for company_id, target in targets.items():
            if target.company_id != company_id:
                raise ValueError(f"target of {target.company_id} filed under {company_id}")
        async with self._lock:
            if self._closed:
                raise RuntimeError("PlatformStreams is closed")
            redaction.register_all(target.token for target in targets.values())
            ending = [
                company_id
                for company_id, stream in self._streams.items()
                if company_id not in targets or not stream.same_connection(targets[company_id])
            ]
            await self._close_streams(ending)
            for company_id, target in targets.items():
                stream = self._streams.get(company_id)
                if stream is None:
                    self._streams[company_id] = self._open(target)
                elif stream.target != target:
                    stream.target = target  # the events alone changed: read per event

    def statuses(self) -> dict[uuid.UUID, StreamStatus]:
        return {company_id: stream.status() for company_id, stream in self._streams.items()}

    async def close(self) -> None:
        """Close every stream and wait for their tasks: no socket is left open."""
        async with self._lock:
            self._closed = True
            await self._close_streams(list(self._streams))

    def _open(self, target: StreamTarget) -> _Stream:
        stream = _Stream(target, self._policy)
        stream.task = asyncio.create_task(stream.run(), name=f"platform-stream-{target.company_id}")
        return stream

    async def _close_streams(self, company_ids: list[uuid.UUID]) -> None:
        streams = [self._streams.pop(company_id) for company_id in company_ids]
        await asyncio.gather(*(stream.close() for stream in streams))


class _Stream:
    """One company's connection and its reconnect loop, and what it did so far."""

    def __init__(self, target: StreamTarget, policy: _Policy) -> None:
        self.target = target
        self.task: asyncio.Task[None] | None = None
        self._policy = policy
        self._company = target.company_id
        now = policy.clock()
        self._status = StreamStatus(
            state=StreamState.CONNECTING,
            since=now,
            detail=None,
            reconnects=0,
            events_received=0,
            last_event_at=None,
            disconnected_seconds=0.0,
        )
        self._connections = 0
        self._down_since: datetime | None = now  # not connected yet counts as down
        self._down_total = 0.0
        self._attempts_down = 0  # attempts since the connection was last up
        self._warned = False  # the outage's one WARNING line was written

    def same_connection(self, target: StreamTarget) -> bool:
        return (target.url, target.token) == (self.target.url, self.target.token)

    def status(self) -> StreamStatus:
        down = self._down_total
        if self._down_since is not None:
            down += max(0.0, (self._policy.clock() - self._down_since).total_seconds())
        return replace(self._status, disconnected_seconds=down)

    async def run(self) -> None:
        """Connect, stay connected while it lasts, wait, and again: until `close` cancels it."""
        policy = self._policy
        failures = 0  # consecutive unreachable attempts
        while True:
            self._attempts_down += 1
            try:
                ending = await self._attempt()
            except Exception as exc:  # a surprise, the library's or ours: an outage like any
                self._unreachable(safe_text(f"{type(exc).__name__}: {exc}"))
                ending = Ending.UNREACHABLE
            failures = failures + 1 if ending is Ending.UNREACHABLE else 0
            delay = retry_delay(
                ending,
                failures,
                backoff=policy.backoff,
                refused_retry_seconds=policy.refused_retry_seconds,
                random_fraction=policy.random(),
            )
            log.debug("platform stream of company %s: next attempt in %.2f s", self._company, delay)
            await asyncio.sleep(delay)

    async def _attempt(self) -> Ending:
        """One connection, from the attempt to its end; how it ended."""
        try:
            connection = await open_connection(
                self.target.url,
                self.target.token,
                self._hand_on,
                timeout=self._policy.connect_timeout,
            )
        except Refused as refusal:
            self._refused(refusal.detail)
            return Ending.REFUSED
        except Unreachable as failure:
            self._unreachable(failure.detail)
            return Ending.UNREACHABLE
        self._connected()
        try:
            reason = await connection.closed()
        finally:
            await connection.close()
        self._lost(reason)
        return Ending.DROPPED

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self._set(StreamState.DISCONNECTED, "closed")
        log.info("platform stream of company %s: closed", self._company)

    async def _hand_on(self, event: str, data: Any) -> None:
        """Every event of the connection comes here; only the target's events go on."""
        if event not in self.target.events:
            return
        self._status = replace(
            self._status,
            events_received=self._status.events_received + 1,
            last_event_at=self._policy.clock(),
        )
        try:
            await self._policy.on_event(self._company, event, data)
        except Exception:
            log.exception(
                "platform stream of company %s: handing on a %s event failed",
                self._company,
                event,
            )

    # -- state changes and their log lines ---------------------------------------------

    def _connected(self) -> None:
        now = self._policy.clock()
        down_for = (now - self._down_since).total_seconds() if self._down_since else 0.0
        self._down_total += down_for
        self._down_since = None
        if self._connections == 0 and self._attempts_down == 1:
            log.info("platform stream of company %s: connected", self._company)
        elif self._connections == 0:
            log.info(
                "platform stream of company %s: connected after %.1f s (%d attempts)",
                self._company,
                down_for,
                self._attempts_down,
            )
        else:
            log.info(
                "platform stream of company %s: connected again after %.1f s down (%d attempts)",
                self._company,
                down_for,
                self._attempts_down,
            )
            self._status = replace(self._status, reconnects=self._status.reconnects + 1)
        self._connections += 1
        self._attempts_down = 0
        self._warned = False
        self._set(StreamState.CONNECTED, None)

    def _lost(self, reason: str) -> None:
        self._went_down()
        self._warned = True  # the outage's WARNING is this one
        log.warning("platform stream of company %s: %s; reconnecting", self._company, reason)
        self._set(StreamState.DISCONNECTED, reason)

    def _went_down(self) -> None:
        if self._down_since is None:
            self._down_since = self._policy.clock()

    def _unreachable(self, detail: str) -> None:
        self._went_down()
        if not self._warned:
            self._warned = True
            log.warning(
                "platform stream of company %s: cannot connect (%s); retrying with backoff",
                self._company,
                detail,
            )
        else:
            log.debug(
                "platform stream of company %s: still cannot connect, attempt %d (%s)",
                self._company,
                self._attempts_down,
                detail,
            )
        self._set(StreamState.DISCONNECTED, detail)

    def _refused(self, message: str) -> None:
        self._went_down()
        log.warning(
            "platform stream of company %s: the platform refused the token (%s); "
            "next attempt in %.0f s",
            self._company,
            message,
            self._policy.refused_retry_seconds,
        )
        self._set(StreamState.REFUSED, message)

    def _set(self, state: StreamState, detail: str | None) -> None:
        """Record the new state; tell `on_state` if the state itself changed."""
        changed = state is not self._status.state
        since = self._policy.clock() if changed else self._status.since
        self._status = replace(self._status, state=state, since=since, detail=detail)
        if changed:
            try:
                self._policy.on_state(self._company, self.status())
            except Exception:
                log.exception("platform stream of company %s: on_state failed", self._company)
