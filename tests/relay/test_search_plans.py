"""PostgreSQL's plans for every read of the execution log the relay allows: each uses an
index and touches only the monthly partitions of its window.

The log holds 120,000 rows over three months (analyzed and vacuumed), so the planner has a
real choice between an index and a sequential scan; the statements EXPLAINed are the ones
the relay's own functions send, captured as they run.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, event

from relay.db import migrations
from relay.db.engine import make_engine
from relay.execution_log.retention import Month
from relay.execution_log.search import (
    ExecutionQuery,
    get_execution,
    message_attempts,
    search_executions,
)
from relay.execution_log.stats import stats
from spool import DurableQueue
from tests.support.pg_cluster import PgCluster

ROWS = 120_000
MONTHS = [Month.of(datetime.now(UTC)).plus(n) for n in (-2, -1, 0)]
START = MONTHS[0].start
STEP = (MONTHS[-1].end - START) / ROWS
# Ten days inside the middle month, and a window across the first two months' boundary.
IN_ONE_MONTH = (MONTHS[1].start + timedelta(days=10), MONTHS[1].start + timedelta(days=20))
ACROSS_TWO = (MONTHS[1].start - timedelta(days=3), MONTHS[1].start + timedelta(days=3))
INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}

COMPANY = uuid.UUID(bytes=bytes.fromhex("0" * 31 + "3"))
WEBHOOK = uuid.UUID(bytes=bytes.fromhex("0" * 30 + "17"))
FILL = f"""
INSERT INTO webhook_executions (execution_id, webhook_id, company_id, event_id, event_type,
    message_id, attempt, status, response_status, error, duration_ms, phone_number,
    request_payload, created_at)
SELECT gen_random_uuid(),
       lpad(to_hex(g %% 200), 32, '0')::uuid,
       lpad(to_hex(g %% 40), 32, '0')::uuid,
       1,
       CASE WHEN g %% 10 = 0 THEN 'other-event' ELSE 'call-history-was-created' END,
       'msg_' || md5(g::text),
       1 + g %% 3,
       CASE WHEN g %% 25 = 0 THEN 'failed' ELSE 'success' END,
       CASE WHEN g %% 25 = 0 THEN 500 ELSE 200 END,
       NULL,
       40,
       CASE WHEN g %% 7 = 0 THEN NULL ELSE '55119' || lpad((g %% 30000)::text, 8, '0') END,
       '{{"data": {{}}}}'::jsonb,
       %(start)s::timestamptz + g * %(step)s::interval
FROM generate_series(1, {ROWS}) AS g"""


@pytest.fixture(scope="module")
def full_log(pg_cluster: PgCluster) -> Iterator[Engine]:
    """A database of its own with the 120,000 rows (the suite's other tests truncate theirs)."""
    pg_cluster.create_database("search_plans")
    url = pg_cluster.url("search_plans")
    migrations.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        for month in MONTHS:
            conn.exec_driver_sql(month.create_partition_sql())
        conn.exec_driver_sql(FILL, {"start": START, "step": STEP})
    with psycopg.connect(pg_cluster.conninfo("search_plans"), autocommit=True) as raw:
        raw.execute("VACUUM (ANALYZE) webhook_executions")
    yield engine
    engine.dispose()


class Captured:
    """The SELECTs on webhook_executions an engine sends while a block runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[tuple[str, Any]] = []

    def __enter__(self) -> Captured:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "webhook_executions" in statement:
            self.statements.append((statement, params))

    def plans(self) -> list[dict[str, Any]]:
        """The plans of the captured statements, EXPLAINed with the same parameters."""
        plans = []
        with self.engine.connect() as conn:
            for statement, params in self.statements:
                explained = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", params)
                plans.append(explained.scalar_one()[0]["Plan"])
        return plans


def scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "Relation Name" in plan:
        yield plan
    for child in plan.get("Plans", ()):
        yield from scans(child)


def partitions_of(window: tuple[datetime, datetime]) -> set[str]:
    since, until = window
    return {m.partition_name for m in MONTHS if m.start < until and m.end > since}


def assert_indexed_and_pruned(
    engine: Engine, window: tuple[datetime, datetime], read: Callable[[], object]
) -> list[dict[str, Any]]:
    with Captured(engine) as captured:
        read()
    assert captured.statements, "nothing was sent to the database"
    plans = captured.plans()
    for plan in plans:
        found = list(scans(plan))
        on_log = [s for s in found if s["Relation Name"].startswith("webhook_executions")]
        assert on_log, plan
        assert {s["Node Type"] for s in on_log} <= INDEX_SCANS, json.dumps(plan, indent=1)
        assert {s["Relation Name"] for s in on_log} <= partitions_of(window), plan
    return plans


FILTERS: dict[str, Any] = {
    "company_id": COMPANY,
    "phone": "5511900001234",
    "status": "failed",
    "event_type": "other-event",
    "webhook_id": WEBHOOK,
    "message_id": "msg_" + "0" * 32,
}
COMBINATIONS = [
    dict(chosen)
    for size in range(len(FILTERS) + 1)
    for chosen in itertools.combinations(FILTERS.items(), size)
]


@pytest.mark.parametrize("window", [IN_ONE_MONTH, ACROSS_TWO], ids=["one-month", "two-months"])
def test_every_filter_combination_is_served_by_an_index_in_its_window_partitions(
    full_log: Engine, outbox: DurableQueue, window: tuple[datetime, datetime]
) -> None:
    since, until = window
    for filters in COMBINATIONS:
        for status in (filters.get("status"), "success"):
            query = ExecutionQuery(**(filters | {"status": status}), since=since, until=until)
            page = search_executions(full_log, outbox, query)
            plans = assert_indexed_and_pruned(
                full_log, window, lambda q=query: search_executions(full_log, outbox, q)
            )
            assert len(plans) == 1
            if page.next_cursor is not None:  # the next page: bounded by its cursor
                following = ExecutionQuery(
                    **(filters | {"status": status}), until=until, cursor=page.next_cursor
                )
                assert_indexed_and_pruned(
                    full_log,
                    window,
                    lambda q=following: search_executions(full_log, outbox, q),
                )


def test_the_defaulted_window_reads_only_the_last_week(
    full_log: Engine, outbox: DurableQueue
) -> None:
    now = MONTHS[2].start + timedelta(days=2)  # the last week spans two months
    window = (now - timedelta(days=7), now)
    for filters in ({}, {"company_id": COMPANY}, {"phone": "5511900001234"}):
        assert_indexed_and_pruned(
            full_log,
            window,
            lambda f=filters: search_executions(
                full_log, outbox, ExecutionQuery(**f), clock=lambda: now
            ),
        )


@pytest.mark.parametrize("company", [None, COMPANY], ids=["all", "one-company"])
@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_stats_are_index_backed_aggregates_over_the_window(
    full_log: Engine, company: uuid.UUID | None, bucket: str
) -> None:
    since, until = IN_ONE_MONTH[0], IN_ONE_MONTH[0] + timedelta(days=1)
    counted = stats(full_log, company_id=company, since=since, until=until, bucket=bucket)
    assert sum(counted.by_status.values()) > 0
    plans = assert_indexed_and_pruned(
        full_log,
        (since, until),
        lambda: stats(full_log, company_id=company, since=since, until=until, bucket=bucket),
    )
    assert len(plans) == 2  # per company and status; per bucket and status


def test_lookups_by_id_and_message_probe_each_partition_by_index(
    full_log: Engine, outbox: DurableQueue
) -> None:
    """An id or a message has no time window: such a lookup is one index probe per monthly
    partition (retention keeps a few). The months made ahead are still empty, and the
    planner rightly reads an empty table without its index."""
    with full_log.connect() as conn:
        execution_id, message_id = conn.execute(
            sa.text("SELECT execution_id, message_id FROM webhook_executions LIMIT 1")
        ).one()
    lookups: list[Callable[[], object]] = [
        lambda: get_execution(full_log, outbox, execution_id),
        lambda: message_attempts(full_log, outbox, [message_id]),
        lambda: message_attempts(full_log, outbox, [message_id, "msg_other"], webhook_id=WEBHOOK),
    ]
    filled = {month.partition_name for month in MONTHS}
    for lookup in lookups:
        with Captured(full_log) as captured:
            lookup()
        (plan,) = captured.plans()
        read = {s["Relation Name"]: s["Node Type"] for s in scans(plan)}
        assert filled <= set(read), plan
        assert {read[name] for name in filled} <= INDEX_SCANS, json.dumps(plan, indent=1)
