"""What the database pays: 100 quiet companies drained after a minute cost ONE commit."""

from __future__ import annotations

import uuid
from datetime import timedelta

from freezegun import freeze_time
from sqlalchemy import Engine

from relay.execution_log.sink import ExecutionLogSink
from spool import Drainer, DrainPolicy, DurableQueue, Outcome
from tests.support.pg_cluster import PgCluster
from tests.support.relay_data import TEST_DATABASE, CommitMeter, append_results, assert_logged_once


def test_100_companies_with_10_rows_each_cost_one_commit(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine, pg_cluster: PgCluster
) -> None:
    drainer = Drainer(outbox, sink, DrainPolicy(batch_size=50, max_age=timedelta(seconds=60)))
    with freeze_time("2026-11-25 12:00:00") as clock:
        ids = [i for _ in range(100) for i in append_results(outbox, uuid.uuid4(), 10)]
        clock.tick(timedelta(seconds=59))
        assert drainer.drain_once().outcome is Outcome.IDLE
        clock.tick(timedelta(seconds=1))
        pg_engine.dispose()
        meter = CommitMeter(pg_cluster, TEST_DATABASE)
        try:
            meter.wait_until_alone()
            meter.flush(pg_engine)  # connecting costs a commit: pay it before measuring
            before = meter.commits()
            report = drainer.drain_once()
            meter.flush(pg_engine)
            after = meter.commits()
        finally:
            meter.close()
    assert (report.rows_written, report.keys, report.transactions) == (1000, 100, 1)
    assert after - before == 1
    assert_logged_once(pg_engine, ids)
