"""Shared fixtures: a real throwaway PostgreSQL cluster, migrated once, and real spool files."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db import migrations
from relay.db.engine import make_engine
from relay.execution_log.record import ExecutionResult
from relay.execution_log.sink import ExecutionLogSink
from relay.runtime.wiring import EXECUTION_LOG_QUEUE
from spool import Clock, DurableQueue, SpoolDatabase, utc_now
from tests.support.pg_cluster import PgCluster

SAMPLE = (
    Path(__file__).resolve().parents[2] / "shared" / "samples" / "call-history-was-created.json"
)
TEST_DATABASE = "relay_test"


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """One PostgreSQL server for the whole run; outage tests stop and start it."""
    with PgCluster(tmp_path_factory.mktemp("pg"), fsync=False) as cluster:
        yield cluster


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
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "spool.db"


@pytest.fixture
def spool_db(spool_path: Path) -> Iterator[SpoolDatabase]:
    db = SpoolDatabase(spool_path)
    yield db
    db.close()


@pytest.fixture
def outbox(spool_db: SpoolDatabase) -> DurableQueue:
    return DurableQueue(spool_db, EXECUTION_LOG_QUEUE)


def sample_event() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(SAMPLE.read_text())
    return loaded


def make_result(
    company_id: uuid.UUID,
    *,
    created_at: datetime | None = None,
    phone_number: str | None = "5511987654321",
    request_payload: str | None = None,
    attempt: int = 1,
    error: str | None = None,
) -> ExecutionResult:
    """A realistic attempt result for the sample call-history event."""
    return ExecutionResult(
        company_id=company_id,
        webhook_id=uuid.uuid4(),
        event_id=1,
        event_type="call-history-was-created",
        message_id=f"msg_{uuid.uuid4().hex}",
        attempt=attempt,
        status="success" if error is None else "failed",
        response_status=200 if error is None else None,
        error=error,
        duration_ms=42,
        phone_number=phone_number,
        request_payload=request_payload
        if request_payload is not None
        else json.dumps({"event_type": "call-history-was-created", "data": sample_event()}),
        created_at=created_at or datetime.now(UTC),
    )


def append_results(
    queue: DurableQueue, company_id: uuid.UUID, count: int, clock: Clock = utc_now
) -> list[str]:
    """Append `count` results for one company, made and spooled at `clock()`; return ids."""
    ids = []
    for _ in range(count):
        now = clock()
        result = make_result(company_id, created_at=now)
        receipt = queue.append(result.spool_key(), result.spool_payload(), enqueued_at=now)
        ids.append(receipt.record_id)
    return ids


def logged_ids(engine: Engine) -> list[str]:
    """Every execution_id in `webhook_executions`, duplicates included."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT execution_id FROM webhook_executions")).scalars()
        return [str(value) for value in rows]


def assert_logged_once(engine: Engine, expected: Sequence[str]) -> None:
    ids = logged_ids(engine)
    assert len(ids) == len(set(ids)), "duplicate execution_id in webhook_executions"
    assert sorted(ids) == sorted(expected)


class CommitMeter:
    """Counts committed transactions of one database from `pg_stat_database.xact_commit`.

    Backends report their counters lazily (at most once a second when idle, and at exit),
    so the meter makes them report: it waits until no other session is connected, and
    `flush(engine)` makes the engine's pooled backend report at once. The meter's own
    connection stays inside one transaction that it never commits, so it adds nothing.
    """

    def __init__(self, cluster: PgCluster, dbname: str) -> None:
        self.dbname = dbname
        self.conn = psycopg.connect(cluster.conninfo(dbname))
        self.conn.execute("SET LOCAL stats_fetch_consistency = none")

    def wait_until_alone(self) -> None:
        for _ in range(1000):  # bounded: 10 s
            self.conn.execute("SELECT pg_stat_clear_snapshot()")  # activity is cached
            row = self.conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.dbname,),
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            threading.Event().wait(0.01)
        raise AssertionError(f"other sessions stay connected to {self.dbname}")

    @staticmethod
    def flush(engine: Engine) -> None:
        """Make the engine's backend report now; its ROLLBACK is no commit."""
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_stat_force_next_flush()"))

    def commits(self) -> int:
        row = self.conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (self.dbname,)
        ).fetchone()
        assert row is not None
        return int(str(row[0]))

    def close(self) -> None:
        self.conn.rollback()
        self.conn.close()
