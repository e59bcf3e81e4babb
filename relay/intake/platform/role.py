"""The platform role: follows the registry, keeps one stream per company that should have one,
and stores what they hand on. `relay platform` runs it (as `relay serve`'s child, or as a
unit of its own); tests and `relay demo` run it in the intake's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping

import anyio.to_thread
from sqlalchemy import Engine

from relay.inbox.store import EventInbox
from relay.intake.batching import AcceptBatcher
from relay.intake.platform.locks import LOCK_ROUND_SECONDS, StreamLocks
from relay.intake.platform.receiver import PlatformIntake
from relay.intake.platform.status import StreamReports, this_relay
from relay.intake.platform.streams import PlatformStreams, StreamTarget
from relay.intake.platform.targets import stream_targets
from relay.registry.cache import Registry, RegistrySnapshot

log = logging.getLogger(__name__)

# How often the role compares the registry's snapshot with the streams it keeps (a new
# snapshot is noticed within RELAY_REGISTRY_CHECK_SECONDS plus this) and refreshes gauges.
FOLLOW_SECONDS = 1.0


class PlatformRole:
    """Streams in, inbox out; start and stop from the event loop."""

    def __init__(
        self,
        engine: Engine,
        registry: Registry,
        inbox: EventInbox,
        *,
        cluster_urls: Mapping[str, str],
        refused_retry_seconds: float,
        on_accepted: Callable[[], None],
        locks: StreamLocks | None = None,
    ) -> None:
        """`locks`: several relays share the database; stream only the companies held."""
        self._registry = registry
        self._locks = locks
        self._cluster_urls = dict(cluster_urls)
        self._accepts = AcceptBatcher(inbox)
        self.reports = StreamReports(engine, holder=this_relay())
        self._intake = PlatformIntake(registry, self._accepts, on_accepted)
        self.streams = PlatformStreams(
            self._intake.receive, self.reports.changed, refused_retry_seconds=refused_retry_seconds
        )
        self._open: dict[uuid.UUID, StreamTarget] = {}
        self._followed: RegistrySnapshot | None = None
        self._wanted: dict[uuid.UUID, StreamTarget] = {}
        self._next_lock_round = 0.0
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._follow_registry(), name="platform-follow"),
            asyncio.create_task(self.reports.write_forever(), name="platform-reports"),
        ]

    async def stop(self) -> None:
        """Close every stream (events being stored finish first), then record that."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.streams.close()
        await self._intake.finish()
        for company_id in self._open:
            self.reports.closed(company_id, "the relay stopped")
        with contextlib.suppress(Exception):  # best effort: the database may be away
            await self.reports.write_pending()
        if self._locks is not None:
            await anyio.to_thread.run_sync(self._locks.close)
        self._accepts.close()

    async def _follow_registry(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            snapshot = self._registry.snapshot
            changed = snapshot is not self._followed and self._registry.loaded
            if changed:
                self._wanted = stream_targets(snapshot, self._cluster_urls)
                self._followed = snapshot
            if self._locks is not None and (changed or loop.time() >= self._next_lock_round):
                self._next_lock_round = loop.time() + LOCK_ROUND_SECONDS
                held = await anyio.to_thread.run_sync(self._locks.hold, list(self._wanted))
                await self._apply({c: t for c, t in self._wanted.items() if c in held})
            elif changed:
                await self._apply(self._wanted)
            self.reports.publish(self.streams.statuses())
            await asyncio.sleep(FOLLOW_SECONDS)

    async def _apply(self, targets: dict[uuid.UUID, StreamTarget]) -> None:
        if targets == self._open:
            return
        if targets.keys() != self._open.keys():
            log.info("platform streams: %d companies", len(targets))
        await self.streams.apply(targets)  # a closed stream's last state change comes first
        for company_id in self._open.keys() - targets.keys():
            if company_id not in self._wanted:  # else another relay holds (or will hold) it
                self.reports.closed(company_id, "no platform token or no active webhook")
        self._open = targets
