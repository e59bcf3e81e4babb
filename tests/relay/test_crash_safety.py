"""Crashes and outages at the worst moments: nothing lost, nothing duplicated."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import Engine

from relay.execution_log.sink import ExecutionLogSink
from spool import Drainer, DrainPolicy, DurableQueue, Outcome, SpoolRecord
from tests.support.pg_cluster import PgCluster
from tests.support.relay_data import TEST_DATABASE, append_results, assert_logged_once, logged_ids


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so nothing catches it on the way."""


class CrashAfterCommit:
    """A sink that commits for real, then 'dies' before the drainer can delete spool rows."""

    def __init__(self, inner: ExecutionLogSink) -> None:
        self.inner = inner

    def write(self, records: Sequence[SpoolRecord]) -> None:
        self.inner.write(records)
        raise SimulatedCrash


def test_a_crash_between_commit_and_spool_delete_duplicates_nothing(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    ids = append_results(outbox, uuid.uuid4(), 80) + append_results(outbox, uuid.uuid4(), 20)
    with pytest.raises(SimulatedCrash):
        Drainer(outbox, CrashAfterCommit(sink), DrainPolicy()).drain_once(force=True)
    assert outbox.stats().pending == 100  # committed in PostgreSQL, still in the spool
    assert_logged_once(pg_engine, ids)

    report = Drainer(outbox, sink, DrainPolicy()).drain_once(force=True)  # after "restart"
    assert report.rows_written == 100
    assert outbox.stats().pending == 0
    assert_logged_once(pg_engine, ids)


def test_postgresql_stopped_during_a_drain_transaction(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine, pg_cluster: PgCluster
) -> None:
    """The drain's transaction is open (blocked on a lock) when the server dies."""
    ids = append_results(outbox, uuid.uuid4(), 120)
    drainer = Drainer(outbox, sink, DrainPolicy(), random_fraction=lambda: 0.0)
    blocker = psycopg.connect(pg_cluster.conninfo(TEST_DATABASE))
    blocker.execute("LOCK TABLE webhook_executions IN ACCESS EXCLUSIVE MODE")
    reports = []
    worker = threading.Thread(target=lambda: reports.append(drainer.drain_once(force=True)))
    try:
        worker.start()
        _wait_for_lock_waiter(pg_cluster)
        pg_cluster.stop(mode="immediate")
        worker.join(30)
    finally:
        blocker.close()
        pg_cluster.start()
    assert not worker.is_alive()
    [report] = reports
    assert report.outcome is Outcome.TRANSIENT_ERROR
    assert outbox.stats().pending == 120
    assert logged_ids(pg_engine) == []

    a_minute_later = datetime.now(UTC) + timedelta(seconds=61)  # past backoff and max age
    assert drainer.drain_once(a_minute_later).rows_written == 120
    assert_logged_once(pg_engine, ids)
    assert outbox.stats().pending == 0


def _wait_for_lock_waiter(cluster: PgCluster) -> None:
    """Until the drain's INSERT waits on our lock (bounded: 10 s)."""
    with psycopg.connect(cluster.conninfo(TEST_DATABASE), autocommit=True) as conn:
        for _ in range(1000):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0]:
                return
            threading.Event().wait(0.01)
    raise AssertionError("the drain never reached PostgreSQL")


def test_postgresql_down_then_back_delivers_everything_once(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine, pg_cluster: PgCluster
) -> None:
    drainer = Drainer(outbox, sink, DrainPolicy(), random_fraction=lambda: 0.0)
    ids = append_results(outbox, uuid.uuid4(), 60)
    pg_cluster.stop(mode="fast")
    try:
        now = datetime.now(UTC)
        for attempt in range(3):  # the spool only grows while the database is away
            ids += append_results(outbox, uuid.uuid4(), 10)
            report = drainer.drain_once(now + timedelta(minutes=attempt + 1), force=False)
            assert report.outcome is Outcome.TRANSIENT_ERROR
    finally:
        pg_cluster.start()
    assert outbox.stats().pending == 90
    assert drainer.drain_once(datetime.now(UTC) + timedelta(minutes=10)).rows_written == 90
    assert_logged_once(pg_engine, ids)
