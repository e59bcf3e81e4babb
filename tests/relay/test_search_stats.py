"""Counts over a window of the log: per status, per company and per hour or day, the same
figures the original design's monitoring SQL gives (which keeps working on this schema)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db import migrations
from relay.db.engine import make_engine
from relay.errors import InputError
from relay.execution_log.sink import ExecutionLogSink
from relay.execution_log.stats import stats
from relay.registry import writes
from spool import Drainer, DrainPolicy, DurableQueue
from tests.support.relay_data import make_result

START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
# The design note's queries (../shared/reference/batch-logging-design.md), verbatim.
PER_COMPANY = """
SELECT
  c.name as empresa,
  COUNT(*) as total_logs,
  COUNT(CASE WHEN we.status = 'success' THEN 1 END) as sucessos,
  COUNT(CASE WHEN we.status = 'failed' THEN 1 END) as falhas
FROM webhook_executions we
JOIN companies c ON c.id = we.company_id
WHERE we.phone_number IS NOT NULL
GROUP BY c.name
ORDER BY total_logs DESC;"""
PER_HOUR = """
SELECT
  DATE_TRUNC('hour', created_at) as hora,
  COUNT(*) as total_logs
FROM webhook_executions
WHERE phone_number IS NOT NULL
GROUP BY hora
ORDER BY hora DESC
LIMIT 24;"""
BY_STATUS = """
SELECT
  status,
  COUNT(*) as total
FROM webhook_executions
WHERE phone_number IS NOT NULL
GROUP BY status;"""


def log_rows(engine: Engine, outbox: DurableQueue) -> dict[str, uuid.UUID]:
    """Acme: 5 rows at 09:xx (1 failed), 3 at 10:xx (2 failed); Beta: 2 at 10:xx."""
    acme = writes.add_company(engine, "Acme Cobrancas").id
    beta = writes.add_company(engine, "Beta Telecom").id
    plan = [(acme, 0, None)] * 4 + [(acme, 0, "HTTP 500")]
    plan += [(acme, 1, None)] + [(acme, 1, "timeout")] * 2 + [(beta, 1, None)] * 2
    for n, (company, hour, error) in enumerate(plan):
        at = START + timedelta(hours=hour, minutes=n)
        result = make_result(company, created_at=at, error=error)
        outbox.append(result.spool_key(), result.spool_payload())
    Drainer(outbox, ExecutionLogSink(engine), DrainPolicy()).drain_once(force=True)
    return {"acme": acme, "beta": beta}


def counted(engine: Engine, **params: Any) -> dict[str, Any]:
    window = {"since": START, "until": START + timedelta(hours=2)}
    return stats(engine, **(window | params)).as_json()


def test_counts_per_status_company_and_hour(pg_engine: Engine, outbox: DurableQueue) -> None:
    ids = log_rows(pg_engine, outbox)
    figures = counted(pg_engine)
    assert figures["by_status"] == {"success": 7, "failed": 3}
    assert figures["companies"] == [
        {
            "company_id": str(ids["acme"]),
            "name": "Acme Cobrancas",
            "total": 8,
            "successes": 5,
            "failures": 3,
        },
        {
            "company_id": str(ids["beta"]),
            "name": "Beta Telecom",
            "total": 2,
            "successes": 2,
            "failures": 0,
        },
    ]
    assert figures["buckets"] == [
        {"start": START.isoformat(), "total": 5, "successes": 4, "failures": 1},
        {
            "start": (START + timedelta(hours=1)).isoformat(),
            "total": 5,
            "successes": 3,
            "failures": 2,
        },
    ]
    assert counted(pg_engine, bucket="day")["buckets"] == [
        {"start": START.replace(hour=0).isoformat(), "total": 10, "successes": 7, "failures": 3}
    ]
    later = counted(pg_engine, since=START + timedelta(hours=1))
    assert later["by_status"] == {"success": 3, "failed": 2}


def test_the_design_notes_monitoring_sql_still_works_and_agrees(
    pg_engine: Engine, outbox: DurableQueue
) -> None:
    log_rows(pg_engine, outbox)
    figures = counted(pg_engine)
    with pg_engine.connect() as conn:
        conn.exec_driver_sql("SET TIME ZONE 'UTC'")
        per_company = [tuple(row) for row in conn.execute(sa.text(PER_COMPANY))]
        per_hour = [tuple(row) for row in conn.execute(sa.text(PER_HOUR))]
        by_status = dict(tuple(row) for row in conn.execute(sa.text(BY_STATUS)))
    assert per_company == [
        (c["name"], c["total"], c["successes"], c["failures"]) for c in figures["companies"]
    ]
    assert [(hour, total) for hour, total in per_hour] == [
        (datetime.fromisoformat(b["start"]), b["total"]) for b in reversed(figures["buckets"])
    ]
    assert by_status == figures["by_status"]


def test_company_limits_and_the_company_filter_narrow_the_counts(
    pg_engine: Engine, outbox: DurableQueue
) -> None:
    ids = log_rows(pg_engine, outbox)
    only_beta = frozenset({ids["beta"]})
    assert counted(pg_engine, companies=only_beta)["by_status"] == {"success": 2}
    assert counted(pg_engine, company_id=ids["acme"])["by_status"] == {"success": 5, "failed": 3}
    hidden = counted(pg_engine, company_id=ids["acme"], companies=only_beta)
    assert (hidden["by_status"], hidden["companies"], hidden["buckets"]) == ({}, [], [])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bucket": "minute"}, "bucket"),
        ({"since": START, "until": START}, "since"),
        ({"since": datetime(2026, 12, 2, 9, 0)}, "since"),
    ],
)
def test_bad_parameters_name_their_field(
    pg_engine: Engine, params: dict[str, Any], field: str
) -> None:
    with pytest.raises(InputError) as refused:
        stats(pg_engine, **params)
    assert (refused.value.status, refused.value.field) == (422, field)


def test_the_embedded_sqlite_default_counts_the_same(tmp_path: Path, outbox: DurableQueue) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'relay.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    try:
        log_rows(engine, outbox)
        figures = counted(engine)
        assert figures["by_status"] == {"success": 7, "failed": 3}
        assert [b["total"] for b in figures["buckets"]] == [5, 5]
        assert figures["buckets"][0]["start"] == START.isoformat()
        assert [c["name"] for c in figures["companies"]] == ["Acme Cobrancas", "Beta Telecom"]
    finally:
        engine.dispose()
