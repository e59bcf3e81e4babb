"""Wiring: build the spool, the execution-log queue, the sink and the drainer from settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from relay.db.engine import make_engine
from relay.execution_log.sink import ExecutionLogSink
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
