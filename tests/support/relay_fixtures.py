"""The relay's fixtures over the suite's PostgreSQL cluster: a migrated database, an engine
on an empty execution log, the sink, and the relay's outbox. Imported by the conftest files
of the tests that need them, so `tests/spool` never imports `relay`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db import migrations
from relay.db.engine import make_engine
from relay.execution_log.sink import ExecutionLogSink
from relay.runtime.wiring import EXECUTION_LOG_QUEUE
from spool import DurableQueue, SpoolDatabase
from tests.support.pg_cluster import PgCluster
from tests.support.relay_data import TEST_DATABASE


@pytest.fixture(scope="session")
def pg_url(pg_cluster: PgCluster) -> str:
    pg_cluster.create_database(TEST_DATABASE)
    url = pg_cluster.url(TEST_DATABASE)
    migrations.upgrade(url)
    return url


@pytest.fixture
def pg_engine(pg_url: str, pg_cluster: PgCluster) -> Iterator[Engine]:
    """An engine on a migrated database whose execution log starts empty."""
    if not pg_cluster.running:  # an outage test that failed half-way
        pg_cluster.start()
    engine = make_engine(pg_url, timeout_seconds=5)
    with engine.begin() as conn:
        conn.execute(
            sa.text("TRUNCATE webhook_executions, webhook_events, webhooks, companies CASCADE")
        )
    yield engine
    engine.dispose()


@pytest.fixture
def sink(pg_engine: Engine) -> ExecutionLogSink:
    return ExecutionLogSink(pg_engine)


@pytest.fixture
def outbox(spool_db: SpoolDatabase) -> DurableQueue:
    return DurableQueue(spool_db, EXECUTION_LOG_QUEUE)
