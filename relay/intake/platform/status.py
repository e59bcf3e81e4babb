"""What each company's stream is doing, told to the people who run the relay: a row per company
in `platform_streams` (read by `relay companies list`, the API and the console) and the
per-company gauges of `/metrics` (read by `/readyz` too).

Rows are written on a change of state only, never per event, by a task of their own: a slow
or unreachable database delays the news, never an event. A write that fails is tried again
with the next one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.schema import platform_streams
from relay.intake.platform.streams import StreamStatus
from relay.ops.metrics import (
    PLATFORM_DISCONNECTED_SECONDS,
    PLATFORM_LAST_EVENT,
    PLATFORM_RECONNECTS,
    PLATFORM_STREAM_STATE,
    STREAM_STATES,
)
from spool import Clock, utc_now

log = logging.getLogger(__name__)

CLOSED = "closed"
RETRY_SECONDS = 5.0


def this_relay() -> str:
    """Who holds a stream, as its row says: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class StreamNews:
    """A company's stream state as its row records it."""

    state: str
    detail: str | None
    since: datetime


def news_of(status: StreamStatus) -> StreamNews:
    return StreamNews(status.state.value, status.detail, status.since)


class StreamReports:
    """Keeps `platform_streams` and the per-company gauges up to date."""

    def __init__(self, engine: Engine, *, holder: str, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._holder = holder
        self._clock = clock
        self._pending: dict[uuid.UUID, StreamNews] = {}
        self._changed = asyncio.Event()

    def changed(self, company_id: uuid.UUID, status: StreamStatus) -> None:
        """A stream's state changed (from the event loop's thread)."""
        self._report(company_id, news_of(status))

    def closed(self, company_id: uuid.UUID, why: str) -> None:
        """The relay closed the company's stream on purpose (`why` says so in its row)."""
        self._report(company_id, StreamNews(CLOSED, why, self._clock()))

    def publish(self, statuses: dict[uuid.UUID, StreamStatus]) -> None:
        """Refresh the gauges that move without a change of state (reconnects, time down,
        last event); called every second or so."""
        for company_id, status in statuses.items():
            company = str(company_id)
            PLATFORM_RECONNECTS.labels(company).set(status.reconnects)
            PLATFORM_DISCONNECTED_SECONDS.labels(company).set(status.disconnected_seconds)
            if status.last_event_at is not None:
                PLATFORM_LAST_EVENT.labels(company).set(status.last_event_at.timestamp())

    def _report(self, company_id: uuid.UUID, news: StreamNews) -> None:
        for state in STREAM_STATES:
            PLATFORM_STREAM_STATE.labels(str(company_id), state).set(int(state == news.state))
        self._pending[company_id] = news
        self._changed.set()

    async def write_forever(self) -> None:
        """Write pending rows as they come; run as a task, cancelled at stop."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            if not await self.write_pending():
                await asyncio.sleep(RETRY_SECONDS)
                self._changed.set()

    async def write_pending(self) -> bool:
        """Write every pending row in one transaction; False (kept pending) if it failed."""
        batch, self._pending = self._pending, {}
        if not batch:
            return True
        try:
            await anyio.to_thread.run_sync(self._write, batch)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("could not record the state of %d platform streams: %s", len(batch), exc)
            self._pending = batch | self._pending  # newer news of a company wins
            return False
        return True

    def _write(self, batch: dict[uuid.UUID, StreamNews]) -> None:
        now = self._clock()
        with self._engine.begin() as conn:
            existing = set(
                conn.execute(
                    sa.select(platform_streams.c.company_id).where(
                        platform_streams.c.company_id.in_(list(batch))
                    )
                ).scalars()
            )
            for company_id, news in batch.items():
                values = {
                    "state": news.state,
                    "detail": news.detail,
                    "holder": self._holder,
                    "since": news.since,
                    "updated_at": now,
                }
                if company_id in existing:
                    conn.execute(
                        platform_streams.update()
                        .where(platform_streams.c.company_id == company_id)
                        .values(values)
                    )
                else:
                    conn.execute(platform_streams.insert().values(company_id=company_id, **values))
