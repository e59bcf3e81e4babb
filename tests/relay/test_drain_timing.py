"""Timing rules under freezegun, against real PostgreSQL: batch size, max age, restarts, backoff."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import Engine

from relay.db.engine import make_engine
from relay.execution_log.sink import ExecutionLogSink
from relay.runtime.wiring import EXECUTION_LOG_QUEUE
from spool import ConfigSinkError, Drainer, DrainPolicy, DurableQueue, Outcome, SpoolDatabase
from tests.support.ports import reserved_port
from tests.support.relay_data import append_results, assert_logged_once, logged_ids

START = "2026-11-25 12:00:00"


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(START) as clock:
        yield clock


def drainer_for(queue: DurableQueue, sink: ExecutionLogSink) -> Drainer:
    return Drainer(queue, sink, DrainPolicy(batch_size=50, max_age=timedelta(seconds=60)))


def test_the_fiftieth_row_drains_on_the_next_cycle(
    frozen: FrozenDateTimeFactory, outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    drainer = drainer_for(outbox, sink)
    company = uuid.uuid4()
    ids = append_results(outbox, company, 49)
    assert drainer.drain_once().outcome is Outcome.IDLE
    assert logged_ids(pg_engine) == []
    ids += append_results(outbox, company, 1)
    report = drainer.drain_once()
    assert (report.outcome, report.rows_written, report.transactions) == (Outcome.WRITTEN, 50, 1)
    assert_logged_once(pg_engine, ids)


def test_49_rows_stay_at_59_seconds_and_drain_at_60(
    frozen: FrozenDateTimeFactory, outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    drainer = drainer_for(outbox, sink)
    ids = append_results(outbox, uuid.uuid4(), 49)
    frozen.tick(timedelta(seconds=59))
    assert drainer.drain_once().outcome is Outcome.IDLE
    assert outbox.stats().pending == 49
    frozen.tick(timedelta(seconds=1))
    assert drainer.drain_once().rows_written == 49
    assert_logged_once(pg_engine, ids)
    assert outbox.stats().pending == 0


def test_companies_are_due_independently(
    frozen: FrozenDateTimeFactory, outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    """Two companies with 49 rows each: 98 pending, but neither has a batch of its own."""
    drainer = drainer_for(outbox, sink)
    first = append_results(outbox, uuid.uuid4(), 49)
    frozen.tick(timedelta(seconds=10))
    second = append_results(outbox, uuid.uuid4(), 49)
    frozen.tick(timedelta(seconds=49))
    assert drainer.drain_once().outcome is Outcome.IDLE  # first is 59 s old, second 49 s
    frozen.tick(timedelta(seconds=1))
    report = drainer.drain_once()  # first is due by age; second rides along, 1 commit
    assert (report.rows_written, report.transactions) == (98, 1)
    assert_logged_once(pg_engine, first + second)


def test_a_quiet_company_rides_along_with_a_busy_ones_batch(
    frozen: FrozenDateTimeFactory, outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    drainer = drainer_for(outbox, sink)
    quiet_ids = append_results(outbox, uuid.uuid4(), 10)
    frozen.tick(timedelta(seconds=30))
    busy_ids = append_results(outbox, uuid.uuid4(), 120)
    report = drainer.drain_once()  # busy is due (a full batch); quiet is not, yet rides along
    assert (report.rows_written, report.keys, report.transactions) == (130, 2, 1)
    assert_logged_once(pg_engine, busy_ids + quiet_ids)
    frozen.tick(timedelta(minutes=5))
    assert drainer.drain_once().outcome is Outcome.IDLE  # nothing was left behind


def test_after_a_restart_rows_older_than_a_minute_drain_at_once(
    frozen: FrozenDateTimeFactory, spool_path: Path, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    spool = SpoolDatabase(spool_path)
    ids = append_results(DurableQueue(spool, EXECUTION_LOG_QUEUE), uuid.uuid4(), 5)
    spool.close()  # the process stops with 5 young rows pending
    frozen.tick(timedelta(minutes=5))
    reopened = SpoolDatabase(spool_path)
    report = drainer_for(DurableQueue(reopened, EXECUTION_LOG_QUEUE), sink).drain_once()
    assert report.rows_written == 5
    assert_logged_once(pg_engine, ids)
    reopened.close()


def test_backoff_grows_after_each_transient_failure_and_resets_on_success(
    frozen: FrozenDateTimeFactory, outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    """A database that refuses connections: retries at 1, 2, 4 ... 60 s, nothing lost."""
    dead_engine = make_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{reserved_port()}/nothing", timeout_seconds=2
    )
    drainer = Drainer(
        outbox,
        ExecutionLogSink(dead_engine),
        DrainPolicy(),
        random_fraction=lambda: 0.0,  # no jitter: exact delays
    )
    ids = append_results(outbox, uuid.uuid4(), 50)
    delays = []
    for _ in range(8):
        report = drainer.drain_once()
        assert report.outcome is Outcome.TRANSIENT_ERROR
        assert report.retry_at is not None
        delays.append((report.retry_at - datetime.now(UTC)).total_seconds())
        frozen.tick(timedelta(seconds=delays[-1] / 2))
        assert drainer.drain_once().outcome is Outcome.BACKING_OFF  # not before its time
        frozen.tick(timedelta(seconds=delays[-1] / 2))
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    assert outbox.stats().pending == 50
    dead_engine.dispose()

    drainer.sink = sink  # the database is back
    assert drainer.drain_once().rows_written == 50
    assert drainer.retry_at is None
    assert_logged_once(pg_engine, ids)


def test_a_failure_log_says_what_stays_and_when_the_next_try_is(
    frozen: FrozenDateTimeFactory, outbox: DurableQueue, caplog: pytest.LogCaptureFixture
) -> None:
    dead_engine = make_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{reserved_port()}/nothing", timeout_seconds=2
    )
    drainer = Drainer(
        outbox, ExecutionLogSink(dead_engine), DrainPolicy(), random_fraction=lambda: 0
    )
    append_results(outbox, uuid.uuid4(), 60)
    drainer.drain_once()
    dead_engine.dispose()
    [line] = [r.getMessage() for r in caplog.records if r.name == "spool.drain"]
    assert "60 rows stay in the spool" in line
    assert "next try in 1.0 s at 2026-11-25T12:00:01+00:00" in line


def test_an_answer_from_the_database_ends_a_transient_backoff_at_once(
    frozen: FrozenDateTimeFactory, outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    """The relay's registry check reaches the database again: the backlog drains now, not
    when a minute-long backoff runs out."""
    dead_engine = make_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{reserved_port()}/nothing", timeout_seconds=2
    )
    drainer = Drainer(outbox, ExecutionLogSink(dead_engine), DrainPolicy())
    ids = append_results(outbox, uuid.uuid4(), 50)
    for _ in range(7):  # the backoff has grown to its cap
        assert drainer.drain_once().outcome is Outcome.TRANSIENT_ERROR
        assert drainer.retry_at is not None
        frozen.move_to(drainer.retry_at)
    assert drainer.drain_once().outcome is Outcome.TRANSIENT_ERROR
    dead_engine.dispose()
    assert drainer.drain_once().outcome is Outcome.BACKING_OFF

    drainer.sink = sink  # the database is back, and something else noticed
    assert drainer.retry_soon() is True
    assert drainer.drain_once().rows_written == 50  # at the same frozen instant
    assert_logged_once(pg_engine, ids)
    assert drainer.retry_soon() is False  # healthy: nothing to cut short


def test_a_configuration_error_keeps_its_slow_retry_when_the_database_answers(
    frozen: FrozenDateTimeFactory, outbox: DurableQueue
) -> None:
    class MisconfiguredSink:
        def write(self, records: object) -> None:
            raise ConfigSinkError("permission denied for table webhook_executions")

    drainer = Drainer(outbox, MisconfiguredSink(), DrainPolicy())
    append_results(outbox, uuid.uuid4(), 50)
    assert drainer.drain_once().outcome is Outcome.CONFIG_ERROR
    assert drainer.retry_soon() is False  # answering a SELECT does not fix a GRANT
    assert drainer.drain_once().outcome is Outcome.BACKING_OFF
