"""The execution-log sink on real PostgreSQL: every field and the event time kept, poison
isolated. Idempotence, all-or-nothing batches and classified errors are the sink contract
(test_sink_contract.py), run on PostgreSQL and on SQLite."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.execution_log.record import ExecutionResult
from relay.execution_log.sink import ExecutionLogSink
from spool import Drainer, DrainPolicy, DurableQueue, Outcome, RecordSinkError
from tests.support.relay_data import append_results, assert_logged_once, make_result


def all_records(queue: DurableQueue):  # type: ignore[no-untyped-def]
    return [r for b in queue.backlog() for r in queue.fetch_oldest(b.pending, key=b.key)]


def test_rows_carry_every_field_and_the_event_time(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    company = uuid.uuid4()
    happened = datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC)
    result = make_result(company, created_at=happened)
    receipt = outbox.append(result.spool_key(), result.spool_payload())
    sink.write(all_records(outbox))
    with pg_engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM webhook_executions")).mappings().one()
    assert str(row["execution_id"]) == receipt.record_id
    assert row["company_id"] == company
    assert row["webhook_id"] == result.webhook_id
    assert row["created_at"] == happened  # when the POST happened, not when it was flushed
    assert row["phone_number"] == "5511987654321"
    assert row["request_payload"] == json.loads(result.request_payload)
    assert (row["status"], row["response_status"], row["attempt"]) == ("success", 200, 1)
    assert row["event_type"] == "call-history-was-created"


def test_failed_attempts_without_a_response_log_null_status(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    result = make_result(uuid.uuid4(), error="connect timeout after 10 s", phone_number=None)
    outbox.append(result.spool_key(), result.spool_payload())
    sink.write(all_records(outbox))
    with pg_engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM webhook_executions")).mappings().one()
    assert row["status"] == "failed"
    assert row["response_status"] is None
    assert row["error"] == "connect timeout after 10 s"
    assert row["phone_number"] is None


def test_log_lines_name_rows_companies_and_transactions(
    outbox: DurableQueue, sink: ExecutionLogSink, caplog: pytest.LogCaptureFixture
) -> None:
    companies = [uuid.uuid4() for _ in range(3)]
    for company in companies:
        append_results(outbox, company, 50)
    with caplog.at_level(logging.INFO, logger="relay.execution_log.sink"):
        sink.write(all_records(outbox))
    messages = [record.getMessage() for record in caplog.records]
    for company in companies:
        assert f"batch insert: 50 rows for company {company}" in messages
    assert any(
        m.startswith("batch insert done: 150 rows, 3 companies, 1 transaction, ") for m in messages
    )


def poison(company: uuid.UUID, kind: str) -> ExecutionResult:
    if kind == "nul byte":
        return make_result(company, error="bad\x00byte")
    if kind == "21-digit phone":
        return make_result(company, phone_number="1" * 21)
    if kind == "invalid json payload":
        return make_result(company, request_payload="{not json")
    if kind == "lone surrogate":
        return make_result(company, error="broken \ud800 text")
    if kind == "int out of range (server-side only)":
        return make_result(company, attempt=2**31)
    raise AssertionError(kind)


POISON = [
    "nul byte",
    "21-digit phone",
    "invalid json payload",
    "lone surrogate",
    "int out of range (server-side only)",
]


@pytest.mark.parametrize("kind", POISON)
def test_a_poison_row_becomes_a_dead_letter_and_the_rest_arrive(
    kind: str, outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    company = uuid.uuid4()
    good = append_results(outbox, company, 30)
    bad = poison(company, kind)
    bad_id = outbox.append(bad.spool_key(), bad.spool_payload()).record_id
    good += append_results(outbox, company, 19)
    drainer = Drainer(outbox, sink, DrainPolicy())
    report = drainer.drain_once(force=True)
    assert report.outcome is Outcome.WRITTEN
    assert (report.rows_written, report.dead_lettered) == (49, 1)
    assert_logged_once(pg_engine, good)
    [dead] = outbox.dead_letters()
    assert dead.id == bad_id
    assert dead.error
    assert outbox.stats().pending == 0


def test_a_server_side_record_error_is_found_by_bisection(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    company = uuid.uuid4()
    good = append_results(outbox, company, 20)
    bad = poison(company, "int out of range (server-side only)")
    outbox.append(bad.spool_key(), bad.spool_payload())
    good += append_results(outbox, company, 43)
    with pytest.raises(RecordSinkError) as failure:
        sink.write(all_records(outbox))
    assert failure.value.rejected == {}  # the database does not say which row
    assert "22003" in str(failure.value)
    report = Drainer(outbox, sink, DrainPolicy()).drain_once(force=True)
    assert report.dead_lettered == 1
    assert 1 < report.transactions <= 8  # log2(64) halves, each good half one commit
    assert_logged_once(pg_engine, good)
    assert "out of range" in outbox.dead_letters()[0].error


def test_records_older_than_a_day_keep_their_time(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    """A backlog flushed late (after an outage) is still stamped with event time."""
    long_ago = datetime.now(UTC) - timedelta(days=2)
    result = make_result(uuid.uuid4(), created_at=long_ago)
    outbox.append(result.spool_key(), result.spool_payload())
    sink.write(all_records(outbox))
    with pg_engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT created_at FROM webhook_executions")).scalar_one()
    assert stored == long_ago


def test_thousands_of_invalid_records_are_buried_in_one_pass(
    outbox: DurableQueue, sink: ExecutionLogSink, pg_engine: Engine
) -> None:
    company = uuid.uuid4()
    good: list[str] = []
    for n in range(2000):
        if n % 3:
            good += append_results(outbox, company, 1)
        else:
            bad = poison(company, "21-digit phone")
            outbox.append(bad.spool_key(), bad.spool_payload())
    report = Drainer(outbox, sink, DrainPolicy()).drain_once(force=True)
    assert (report.rows_written, report.dead_lettered, report.transactions) == (1333, 667, 1)
    assert_logged_once(pg_engine, good)
    assert all("phone_number has 21 characters" in d.error for d in outbox.dead_letters())
