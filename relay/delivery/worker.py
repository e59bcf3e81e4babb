"""The delivering part of the relay: the dispatcher and its HTTP clients, over a spool
shared with intake and the drain.

`relay serve` runs it in a process of its own (`relay/runtime/dispatcher_process.py`), so POSTs do
not compete with intake or the drain for one core and one GIL; tests and `relay demo` run it
in-process.
"""

from __future__ import annotations

import asyncio
import logging

import anyio.to_thread

from relay.delivery.dispatcher import DispatchConfig, Dispatcher
from relay.delivery.retry import RetryPolicy
from relay.delivery.transport.clients import HostClients
from relay.inbox.store import EventInbox
from relay.registry.cache import Registry
from relay.settings import RelaySettings
from spool import DurableQueue, FileLock

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 30.0


class DispatcherBusyError(Exception):
    """Another process already dispatches this spool's inbox."""


class DeliveryWorker:
    def __init__(
        self,
        settings: RelaySettings,
        inbox: EventInbox,
        outbox: DurableQueue,
        registry: Registry,
    ) -> None:
        self.settings = settings
        self.inbox = inbox
        self.clients = HostClients.from_settings(settings)
        self.dispatcher = Dispatcher(
            inbox,
            outbox,
            registry,
            self.clients,
            DispatchConfig(
                timeout_seconds=settings.http_timeout_seconds,
                max_in_flight=settings.max_in_flight,
                max_per_host=settings.max_per_host,
                retry=RetryPolicy.from_settings(settings),
                is_logged=settings.is_logged,
                log_payload_max_bytes=settings.log_payload_max_bytes,
            ),
        )
        # Two dispatchers on one inbox would POST every delivery twice: one holds this lock.
        self._lock = FileLock(f"{inbox.spool.path}.dispatch.lock")
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """An event was accepted: look for due deliveries now (safe from any thread)."""
        self.dispatcher.wake()

    async def start(self) -> None:
        """Resume deliveries (call from the running event loop).

        Waits up to `LOCK_WAIT_SECONDS` for another dispatcher of this spool to stop (a
        killed relay's child is still going away), then refuses to run beside it."""
        if not await anyio.to_thread.run_sync(self._lock.acquire, LOCK_WAIT_SECONDS):
            raise DispatcherBusyError(
                f"another dispatcher is running on {self.inbox.spool.path} "
                f"(it holds {self._lock.path})"
            )
        self._task = asyncio.create_task(self.dispatcher.run(), name="dispatcher")

    async def stop(self) -> None:
        """Give attempts in flight the grace period; the rest stay in the inbox."""
        handed_back = await self.dispatcher.stop(self.settings.shutdown_grace_seconds)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.clients.aclose()
        waiting = await anyio.to_thread.run_sync(self.inbox.queue.count)
        self._lock.release()
        log.info(
            "dispatcher stopped: %d deliveries wait in the inbox (%d handed back in flight)",
            waiting,
            handed_back,
        )
