"""`relay executions search|show`, run in-process against the suite's PostgreSQL and a real
spool: a readable table or JSON lines, pages by cursor, one-line errors with exit 2."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from relay.cli.main import main
from relay.execution_log.sink import ExecutionLogSink
from relay.runtime.wiring import EXECUTION_LOG_QUEUE
from spool import Drainer, DrainPolicy, DurableQueue, SpoolDatabase
from tests.support.logging_state import logging_restored
from tests.support.relay_data import make_result

COMPANY = uuid.uuid4()


@pytest.fixture
def settings_env(pg_url: str, spool_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_DATABASE_URL", pg_url)
    monkeypatch.setenv("RELAY_SPOOL_PATH", str(spool_path))


@pytest.fixture
def two_rows(pg_engine: Engine, spool_path: Path) -> list[str]:
    """One row logged in PostgreSQL (older), one still in the spool (newer)."""
    db = SpoolDatabase(spool_path)
    queue = DurableQueue(db, EXECUTION_LOG_QUEUE)
    ids = []
    for seconds_ago in (60, 30):
        result = make_result(
            COMPANY,
            created_at=datetime.now(UTC) - timedelta(seconds=seconds_ago),
            phone_number="5582988628425",
        )
        ids.append(queue.append(result.spool_key(), result.spool_payload()).record_id)
        if seconds_ago == 60:
            Drainer(queue, ExecutionLogSink(pg_engine), DrainPolicy()).drain_once(force=True)
    db.close()
    return ids


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with logging_restored():  # main configures the root logger on capsys's stream
        code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("settings_env")
def test_search_prints_a_table_with_pending_rows_and_pages_by_cursor(
    two_rows: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "executions", "search", "--phone", "+55 (82) 98862-8425")
    assert code == 0, err
    header, newer, older = out.splitlines()
    assert header.split() == [
        "created_at",
        "status",
        "http",
        "attempt",
        "phone",
        "company",
        "message",
    ]
    assert newer.split()[1:6] == ["success", "200", "1", "5582988628425", str(COMPANY)]
    assert newer.endswith("pending") and not older.endswith("pending")

    code, out, err = run(
        capsys, "executions", "search", "--company", str(COMPANY), "--limit", "1", "--json"
    )
    assert code == 0
    (line,) = out.splitlines()
    assert json.loads(line)["execution_id"] == two_rows[1]
    cursor = err.strip().split("--cursor ")[1]
    code, out, err = run(
        capsys, "executions", "search", "--limit", "1", "--json", "--cursor", cursor
    )
    assert [json.loads(line)["execution_id"] for line in out.splitlines()] == [two_rows[0]]
    assert "--cursor" not in err  # the last page


@pytest.mark.usefixtures("settings_env")
def test_show_prints_the_row_and_its_body_as_json(
    two_rows: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for row, pending in ((two_rows[0], False), (two_rows[1], True)):
        code, out, _err = run(capsys, "executions", "show", row)
        assert code == 0
        shown = json.loads(out)
        assert (shown["execution_id"], shown["pending"]) == (row, pending)
        assert shown["request_payload"]["event_type"] == "call-history-was-created"


@pytest.mark.usefixtures("settings_env", "pg_engine")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["executions", "search", "--since", "yesterday"], "since: is not an ISO-8601"),
        (["executions", "search", "--until", "2026-12-03T10:00:00"], "until: needs a time zone"),
        (["executions", "search", "--limit", "900"], "limit: must be from 1 to 500"),
        (["executions", "search", "--company", "acme"], "company_id: is not a valid UUID"),
        (["executions", "search", "--status", "lost"], "status: must be one of"),
        (["executions", "search", "--phone", "none"], "phone: is not a phone number"),
        (["executions", "search", "--cursor", "xyz"], "cursor: is not a cursor"),
        (["executions", "show", "42"], "execution_id: is not a valid UUID"),
        (["executions", "show", str(uuid.uuid4())], "execution_id: no such execution"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert_refused(capsys, args, message)


def assert_refused(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    """The command exits 2, printing nothing but one error line that says `message`."""
    code, out, err = run(capsys, *args)
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith("relay: error: ") and message in line
