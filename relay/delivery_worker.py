"""The delivering half of the relay: the dispatcher, its HTTP clients and the execution-log
drain, over a spool shared with intake.

`relay serve` runs it in a process of its own (`relay/dispatcher_process.py`) so POSTs and
drains do not compete with intake for one core; tests and `relay demo` run it in-process.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import anyio.to_thread
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from relay.components import execution_drainer
from relay.dispatcher import DispatchConfig, Dispatcher
from relay.http_clients import HostClients
from relay.inbox import EventInbox
from relay.metrics import DrainMetrics
from relay.registry import Registry
from relay.retention import RetentionError, apply_retention
from relay.settings import RelaySettings
from spool import DrainScheduler, DurableQueue, utc_now
from spool.locks import FileLock

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 30.0
RETENTION_EVERY = timedelta(days=1)
RETENTION_RETRY = timedelta(hours=1)


class DispatcherBusyError(Exception):
    """Another process already dispatches this spool's inbox."""


class DeliveryWorker:
    def __init__(
        self,
        settings: RelaySettings,
        inbox: EventInbox,
        outbox: DurableQueue,
        engine: Engine,
        registry: Registry,
    ) -> None:
        self.settings = settings
        self.inbox = inbox
        self.engine = engine
        self.drain = DrainScheduler(
            execution_drainer(outbox, engine, settings),
            interval_seconds=settings.drain_interval_seconds,
            on_cycle=DrainMetrics().record,
        )
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
                retry=settings.retry_policy(),
                is_logged=settings.is_logged,
                log_payload_max_bytes=settings.log_payload_max_bytes,
            ),
        )
        # Two dispatchers on one inbox would POST every delivery twice: one holds this lock.
        self._lock = FileLock(f"{inbox.spool.path}.dispatch.lock")
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """An event was accepted: look for due deliveries now (safe from any thread)."""
        self.dispatcher.wake()

    def database_answered(self) -> None:
        """The database answered a query: a drain backing off from an outage tries now."""
        if self.drain.drainer.retry_soon():
            log.info("the database answers again: draining the execution log now")
            self.drain.wake()

    async def start(self) -> None:
        """Drain leftovers and resume deliveries (call from the running event loop).

        Waits up to `LOCK_WAIT_SECONDS` for another dispatcher of this spool to stop (a
        killed relay's child is still going away), then refuses to run beside it."""
        if not await anyio.to_thread.run_sync(self._lock.acquire, LOCK_WAIT_SECONDS):
            raise DispatcherBusyError(
                f"another dispatcher is running on {self.inbox.spool.path} "
                f"(it holds {self._lock.path})"
            )
        self.drain.start()
        self._tasks = [
            asyncio.create_task(self.dispatcher.run(), name="dispatcher"),
            asyncio.create_task(self._keep_retention(), name="retention"),
        ]

    async def stop(self) -> None:
        """Give attempts in flight the grace period, then flush the log within its deadline;
        what is left stays in the spool for the next start."""
        settings = self.settings
        handed_back = await self.dispatcher.stop(settings.shutdown_grace_seconds)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.clients.aclose()
        flush = await anyio.to_thread.run_sync(
            lambda: self.drain.shutdown(settings.shutdown_flush_seconds)
        )
        waiting = await anyio.to_thread.run_sync(self.inbox.queue.count)
        self._lock.release()
        log.info(
            "relay stopped: %d deliveries wait in the inbox (%d handed back in flight); "
            "execution log flushed %d rows, %d stay in the spool",
            waiting,
            handed_back,
            flush.rows_written,
            flush.rows_left,
        )

    async def _keep_retention(self) -> None:
        """The daily retention job (`relay/retention.py`): at start, then once a day; an
        hour later when the database could not be reached."""
        days = self.settings.retention_days
        while True:
            try:
                await anyio.to_thread.run_sync(
                    lambda: apply_retention(self.engine, utc_now(), days)
                )
                wait = RETENTION_EVERY
            except (RetentionError, SQLAlchemyError) as exc:
                log.warning("retention job failed, next try in an hour: %s", exc)
                wait = RETENTION_RETRY
            await asyncio.sleep(wait.total_seconds())
