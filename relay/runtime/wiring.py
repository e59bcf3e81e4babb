"""Wiring: build the spool, the execution-log queue, the sink and the drainer from settings."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import anyio.to_thread
from sqlalchemy import Engine

from relay.db.engine import make_engine
from relay.execution_log.sink import ExecutionLogSink
from relay.registry.cache import Registry, keep_fresh
from relay.settings import RelaySettings
from spool import Drainer, DurableQueue, SpoolDatabase

EXECUTION_LOG_QUEUE = "outbox"
SAFETY_NET_CHECKPOINT_PAGES = 10_000  # 40 MB of WAL at the default page size


@dataclass
class ExecutionLog:
    """The spool-side execution log and the drain that empties it into the database."""

    spool: SpoolDatabase
    queue: DurableQueue
    engine: Engine
    drainer: Drainer

    def close(self) -> None:
        self.engine.dispose()
        self.spool.close()


def open_spool(
    settings: RelaySettings, *, check_integrity: bool = True
) -> tuple[SpoolDatabase, DurableQueue]:
    spool = SpoolDatabase(
        settings.spool_path,
        synchronous=settings.spool_synchronous,
        max_bytes=settings.spool_max_bytes,
        check_integrity=check_integrity,
        # The drain job checkpoints every second without blocking writers; SQLite's own
        # checkpoint would run inside an intake or delivery commit. This one is a safety net
        # for when no drain runs (the dispatcher process down).
        autocheckpoint_pages=SAFETY_NET_CHECKPOINT_PAGES,
    )
    return spool, DurableQueue(spool, EXECUTION_LOG_QUEUE)


def open_database(settings: RelaySettings) -> Engine:
    """The engine of the registry and execution log, with the configured timeouts."""
    return make_engine(settings.database_url, timeout_seconds=settings.db_timeout_seconds)


def execution_drainer(queue: DurableQueue, engine: Engine, settings: RelaySettings) -> Drainer:
    """The drain from the spool's execution log into `webhook_executions`."""
    return Drainer(queue, ExecutionLogSink(engine), settings.drain_policy())


def open_execution_log(settings: RelaySettings, *, check_integrity: bool = True) -> ExecutionLog:
    """Open the spool and the database for draining (the caller closes the result)."""
    spool, queue = open_spool(settings, check_integrity=check_integrity)
    try:
        engine = open_database(settings)
    except BaseException:
        spool.close()
        raise
    return ExecutionLog(spool, queue, engine, execution_drainer(queue, engine, settings))


@contextmanager
def execution_log(
    settings: RelaySettings, *, check_integrity: bool = True
) -> Iterator[ExecutionLog]:
    """`open_execution_log`, closed on exit."""
    log = open_execution_log(settings, check_integrity=check_integrity)
    try:
        yield log
    finally:
        log.close()


def stop_on_loop_signals() -> asyncio.Event:
    """An event the running loop sets on SIGTERM or SIGINT: a role's orderly stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


@asynccontextmanager
async def fresh_registry(registry: Registry, settings: RelaySettings) -> AsyncIterator[None]:
    """Load the registry (the last good snapshot survives a failure), then keep it fresh in a
    task until the block ends."""
    await anyio.to_thread.run_sync(registry.refresh)
    refresher = asyncio.create_task(
        keep_fresh(
            registry,
            reload_seconds=settings.registry_refresh_seconds,
            check_seconds=settings.registry_check_seconds,
        ),
        name="registry",
    )
    try:
        yield
    finally:
        refresher.cancel()
        await asyncio.gather(refresher, return_exceptions=True)
