"""`relay messages show|resend`, `relay webhooks recover` and `relay jobs show|run`, in-process
against the suite's PostgreSQL, a real spool and a real receiver."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from relay.inbox.deliveries import Delivery
from tests.relay.conftest import Parts, RunningReceiver, add_webhook
from tests.relay.test_messages import accept, dispatch, drain, set_webhook
from tests.relay.test_search_cli import assert_refused, run


@pytest.fixture(autouse=True)
def settings_env(pg_url: str, spool_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_DATABASE_URL", pg_url)
    monkeypatch.setenv("RELAY_SPOOL_PATH", str(spool_path))


def test_show_and_resend_a_message_that_failed_for_good(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    webhook = add_webhook(pg_engine, parts.company, f"{receiver.url}/status/410")
    message = accept(parts)
    dispatch(parts)
    drain(parts, pg_engine)

    code, out, err = run(capsys, "messages", "show", message)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"message {message}: call-history-was-created of company {parts.company}"
    assert lines[1] == f"  webhook {webhook}: failed (1 attempts)"
    assert lines[3].split()[1:4] == ["failed", "410", "1"]

    set_webhook(pg_engine, webhook, url=f"{receiver.url}/ok")
    code, out, err = run(capsys, "messages", "resend", message)
    assert (code, out) == (0, f"resend of {message} to webhook {webhook} queued (attempt 2)\n")
    (item,) = parts.inbox.queue.find([message])
    assert Delivery.decode(item.payload).url == f"{receiver.url}/ok"

    code, out, _err = run(capsys, "messages", "show", message, "--json")
    (pending,) = json.loads(out)["deliveries"]
    assert (pending["state"], pending["attempts"]) == ("pending", 1)


def test_recover_starts_a_job_that_jobs_run_finishes(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    webhook = add_webhook(pg_engine, parts.company, f"{receiver.url}/status/410")
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    messages = [accept(parts) for _ in range(3)]
    dispatch(parts)

    code, out, err = run(capsys, "webhooks", "recover", str(webhook), "--since", since)
    assert code == 0, err
    job_id = out.strip()
    code, out, _err = run(capsys, "jobs", "show", job_id)
    assert json.loads(out)["state"] == "running"
    code, out, err = run(capsys, "jobs", "run")
    assert (code, out) == (0, f"{job_id} done: 3 messages resent, 3 failed attempts looked at\n")
    assert sorted(item.id for item in parts.inbox.queue.find(messages)) == sorted(messages)
    shown = json.loads(run(capsys, "jobs", "show", job_id)[1])
    assert (shown["state"], shown["messages_sent"], shown["webhook_id"]) == (
        "done",
        3,
        str(webhook),
    )


@pytest.mark.usefixtures("pg_engine")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["messages", "show", "msg_unknown"], "message_id: no such message"),
        (["messages", "resend", "msg_unknown"], "message_id: no such message"),
        (["messages", "resend", "msg_x", "--webhook", "w1"], "webhook_id: is not a valid UUID"),
        (["webhooks", "recover", "w1", "--since", "2026-12-01T00:00:00Z"], "webhook_id: is not"),
        (["webhooks", "recover", str(uuid.uuid4()), "--since", "monday"], "since: is not an ISO"),
        (
            ["webhooks", "recover", str(uuid.uuid4()), "--since", "2026-12-01T00:00:00Z"],
            "webhook_id: no such webhook",
        ),
        (["jobs", "show", "job_unknown"], "job_id: no such job"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert_refused(capsys, args, message)
