"""Test data of the relay: the sample event, realistic attempt results, and what the
execution log holds (shared by tests/relay, tests/faults and the fixtures)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.execution_log.record import ExecutionResult
from spool import Clock, DurableQueue, utc_now
from tests.support.pg_cluster import PgCluster

SAMPLE = (
    Path(__file__).resolve().parents[3] / "shared" / "samples" / "call-history-was-created.json"
)
TEST_DATABASE = "relay_test"


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
