"""The thin wiring test of the APScheduler job: leftovers at start, early wake, shutdown flush.

Timing rules are tested through `drain_once` under freezegun; here real time runs, so the
waits are bounded polls for an observable result, never sleeps standing in for logic.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from relay.execution_log.sink import ExecutionLogSink
from spool import Drainer, DrainPolicy, DrainScheduler, DurableQueue
from tests.support.pg_cluster import PgCluster
from tests.support.relay_data import append_results, assert_logged_once, logged_ids, make_result
from tests.support.waiting import eventually


def test_leftovers_of_an_earlier_run_drain_at_start(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    ids = append_results(outbox, uuid.uuid4(), 7, clock=lambda: an_hour_ago)
    scheduler = DrainScheduler(Drainer(outbox, sink, DrainPolicy()), interval_seconds=3600)
    scheduler.start()  # the interval is an hour: only the start-up run can drain them
    try:
        assert eventually(lambda: outbox.stats().pending == 0)
    finally:
        scheduler.shutdown(deadline_seconds=5)
    assert_logged_once(pg_engine, ids)


@contextmanager
def hourly_scheduler(outbox: DurableQueue, sink: ExecutionLogSink) -> Iterator[DrainScheduler]:
    """A started drain job whose interval is an hour, once its start-up run is over: any
    further run within the test was woken early."""
    scheduler = DrainScheduler(Drainer(outbox, sink, DrainPolicy()), interval_seconds=3600)
    scheduler.start()
    try:
        assert eventually(lambda: scheduler.completed_runs == 1)
        yield scheduler
    finally:
        scheduler.shutdown(deadline_seconds=5)


def test_an_append_completing_a_batch_wakes_the_drain(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    with hourly_scheduler(outbox, sink) as scheduler:
        company = uuid.uuid4()
        ids = append_results(outbox, company, 49)
        assert scheduler.completed_runs == 1  # 49 rows: no wake
        ids += append_results(outbox, company, 1)  # the 50th wakes the job
        assert eventually(lambda: scheduler.completed_runs == 2)
        assert len(logged_ids(pg_engine)) == 50
    assert_logged_once(pg_engine, ids)


def test_a_batch_append_stepping_over_a_full_batch_wakes_the_drain(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    """The dispatcher appends a transaction's log records in one batch: 48 pending plus 4
    makes 52, and no single append ever reads exactly 50."""
    with hourly_scheduler(outbox, sink) as scheduler:
        company = uuid.uuid4()
        ids = append_results(outbox, company, 48)
        batch = [make_result(company) for _ in range(4)]
        receipts = outbox.db.write(
            lambda conn: outbox.append_many_in(
                conn, [(r.spool_key(), r.spool_payload(), None) for r in batch]
            )
        )
        ids += [receipt.record_id for receipt in receipts]
        assert eventually(lambda: scheduler.completed_runs == 2)
        assert len(logged_ids(pg_engine)) == 52
    assert_logged_once(pg_engine, ids)


def test_shutdown_flushes_young_rows_within_its_deadline(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    scheduler = DrainScheduler(Drainer(outbox, sink, DrainPolicy()), interval_seconds=3600)
    scheduler.start()
    ids = append_results(outbox, uuid.uuid4(), 12)  # young, under a batch: not due
    report = scheduler.shutdown(deadline_seconds=10)
    assert (report.rows_written, report.rows_left, report.timed_out) == (12, 0, False)
    assert_logged_once(pg_engine, ids)


def test_what_shutdown_cannot_write_stays_in_the_spool(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine, pg_cluster: PgCluster
) -> None:
    scheduler = DrainScheduler(Drainer(outbox, sink, DrainPolicy()), interval_seconds=3600)
    scheduler.start()
    append_results(outbox, uuid.uuid4(), 12)
    pg_cluster.stop()
    try:
        report = scheduler.shutdown(deadline_seconds=10)
    finally:
        pg_cluster.start()
    assert (report.rows_written, report.rows_left) == (0, 12)
    assert outbox.stats().pending == 12
