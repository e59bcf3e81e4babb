"""The sink contract (tests/support/sink_contract.py) on `ExecutionLogSink`, over real
PostgreSQL and over the embedded SQLite default, with records valid for the execution log."""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db import migrations
from relay.db.engine import make_engine
from relay.db.schema import webhook_executions
from relay.execution_log.record import ExecutionResult
from relay.execution_log.sink import ExecutionLogSink
from spool import DurableQueue, SpoolRecord
from tests.support.pg_cluster import PgCluster
from tests.support.relay_data import make_result
from tests.support.sink_contract import SinkContract, UnnamedRefusalContract, spooled

# Short enough that an outage case fails fast, long enough for a small batch on a busy machine.
SINK_TIMEOUT_SECONDS = 1.0


class ExecutionLogBackend:
    """The contract's hooks common to both databases: attempt results of two companies, a
    NUL byte as the bad record (the sink's validation names it, as PostgreSQL would refuse
    it), and the stored ids read from `webhook_executions`."""

    def __init__(self, queue: DurableQueue, url: str) -> None:
        self.queue = queue
        self.url = url
        self._engines: list[Engine] = []
        self.engine = self._engine(url)
        self.sink = ExecutionLogSink(self.engine)
        self._companies = itertools.cycle([uuid.uuid4(), uuid.uuid4()])

    def _engine(self, url: str) -> Engine:
        engine = make_engine(url, timeout_seconds=SINK_TIMEOUT_SECONDS)
        self._engines.append(engine)
        return engine

    def _spooled(self, result: ExecutionResult) -> SpoolRecord:
        return spooled(self.queue, result.spool_key(), result.spool_payload())

    def good(self) -> SpoolRecord:
        return self._spooled(make_result(next(self._companies)))

    def bad(self) -> SpoolRecord:
        return self._spooled(make_result(next(self._companies), error="bad\x00byte"))

    def stored_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(webhook_executions.c.execution_id)).scalars()
            return [str(value) for value in rows]

    def misconfigured_at(self, url: str) -> ExecutionLogSink:
        return ExecutionLogSink(self._engine(url))

    def close(self) -> None:
        for engine in self._engines:
            engine.dispose()


class PostgreSQLBackend(ExecutionLogBackend):
    """An integer out of range is refused by the server only, without naming the row; an
    outage is the table locked elsewhere for longer than the sink's statement and lock
    timeouts; a misconfiguration is a database without the schema."""

    def __init__(self, queue: DurableQueue, url: str, unmigrated_url: str) -> None:
        super().__init__(queue, url)
        self.unmigrated_url = unmigrated_url

    def unnamed_bad(self) -> SpoolRecord:
        return self._spooled(make_result(next(self._companies), attempt=2**31))

    @contextmanager
    def unavailable(self) -> Iterator[None]:
        with self._engine(self.url).connect() as conn:
            conn.execute(sa.text("LOCK TABLE webhook_executions IN ACCESS EXCLUSIVE MODE"))
            yield  # leaving the block rolls the lock's transaction back

    def misconfigured(self) -> ExecutionLogSink:
        return self.misconfigured_at(self.unmigrated_url)


class SQLiteBackend(ExecutionLogBackend):
    """The sink's validation names every bad record SQLite would take or refuse, so there is
    no unnamed refusal to bisect; an outage is another writer holding the database past the
    sink's busy timeout; a misconfiguration is a database file without the schema."""

    def __init__(self, queue: DurableQueue, directory: Path) -> None:
        self.path = directory / "relay.db"
        url = f"sqlite:///{self.path}"
        migrations.upgrade(url)
        super().__init__(queue, url)
        self.unmigrated_url = f"sqlite:///{directory / 'unmigrated.db'}"

    @contextmanager
    def unavailable(self) -> Iterator[None]:
        writer = sqlite3.connect(self.path, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            yield
        finally:
            writer.close()  # rolls back

    def misconfigured(self) -> ExecutionLogSink:
        return self.misconfigured_at(self.unmigrated_url)


@pytest.fixture(scope="module")
def unmigrated_pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    pg_cluster.create_database("relay_unmigrated")
    yield pg_cluster.url("relay_unmigrated")
    pg_cluster.drop_database("relay_unmigrated")


class TestOnPostgreSQL(UnnamedRefusalContract):
    @pytest.fixture
    def backend(
        self,
        contract_queue: DurableQueue,
        pg_url: str,
        pg_engine: Engine,  # empties the execution log
        unmigrated_pg_url: str,
    ) -> Iterator[PostgreSQLBackend]:
        backend = PostgreSQLBackend(contract_queue, pg_url, unmigrated_pg_url)
        yield backend
        backend.close()


class TestOnSQLite(SinkContract):
    @pytest.fixture
    def backend(self, contract_queue: DurableQueue, tmp_path: Path) -> Iterator[SQLiteBackend]:
        backend = SQLiteBackend(contract_queue, tmp_path / "db")
        yield backend
        backend.close()
