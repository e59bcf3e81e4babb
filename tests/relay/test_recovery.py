"""Recovering a webhook: every message that failed for good to it in a window is resent,
once per job, by a runner that resumes after a SIGKILL from its last committed batch."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from relay.errors import InputError
from relay.inbox.deliveries import Delivery
from relay.inbox.recovery import RecoveryRunner, job_status, start_recovery
from relay.inbox.recovery_jobs import RecoveryJob, RecoveryJobs
from tests.relay.conftest import Parts, RunningReceiver, add_company, add_webhook
from tests.relay.test_messages import accept, dispatch, do_resend, drain, set_webhook
from tests.support.relay_command import RELAY_SCRIPT
from tests.support.waiting import eventually


@pytest.fixture
def jobs(parts: Parts) -> RecoveryJobs:
    return RecoveryJobs(parts.spool)


def runner(parts: Parts, engine: Engine, jobs: RecoveryJobs, batch: int) -> RecoveryRunner:
    return RecoveryRunner(engine, parts.inbox, parts.outbox, jobs, batch_size=batch)


def dispatch_all(parts: Parts, count: int) -> None:
    """Dispatcher passes until `count` attempts were made (a pass starts at most 8 per host)."""
    made = 0
    for _ in range(count):
        made += dispatch(parts)
        if made >= count:
            break
    assert made == count


def fail_for_good(parts: Parts, count: int) -> list[str]:
    """`count` messages delivered once each to the company's 410 webhook: failed for good."""
    messages = [accept(parts) for _ in range(count)]
    dispatch_all(parts, count)
    return messages


def scheduled(parts: Parts, messages: list[str]) -> Counter[str]:
    return Counter(item.id for item in parts.inbox.queue.find(messages))


def run_to_the_end(job_runner: RecoveryRunner, jobs: RecoveryJobs, job_id: str) -> RecoveryJob:
    for _ in range(100):  # bounded: far more passes than the tests' batches
        job = jobs.get(job_id)
        assert job is not None
        if job.state != "running":
            return job
        assert job_runner.run_once()
    raise AssertionError("the job did not finish")


def test_only_messages_failed_for_good_in_the_window_are_resent_once_per_job(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver, jobs: RecoveryJobs
) -> None:
    webhook = add_webhook(pg_engine, parts.company, f"{receiver.url}/status/410")
    too_early = fail_for_good(parts, 2)
    since = datetime.now(UTC)
    failed = fail_for_good(parts, 5)
    drain(parts, pg_engine)  # most rows in PostgreSQL ...
    delivered = failed.pop()  # ... one resent and delivered since: not failed for good
    set_webhook(pg_engine, webhook, url=f"{receiver.url}/ok")
    do_resend(parts, pg_engine, delivered)
    dispatch(parts)
    set_webhook(pg_engine, webhook, url=f"{receiver.url}/retry-after/3600")
    retrying = [accept(parts) for _ in range(2)]  # failed, but waiting for a retry
    dispatch(parts)  # ... and these rows still in the spool (pending)
    other = add_webhook(pg_engine, parts.company, f"{receiver.url}/status/410")
    set_webhook(pg_engine, webhook, status="disabled")  # the new events go to the other one
    elsewhere = fail_for_good(parts, 1)
    set_webhook(pg_engine, webhook, status="active", url=f"{receiver.url}/ok")
    set_webhook(pg_engine, other, status="disabled")

    job = start_recovery(pg_engine, jobs, webhook, since=since)
    job_runner = runner(parts, pg_engine, jobs, batch=2)
    assert job_runner.run_once()
    first = job_status(jobs, job.id)
    assert (first.state, first.rows_scanned) == ("running", 2)  # progress is readable
    done = run_to_the_end(job_runner, jobs, job.id)
    assert (done.state, done.messages_sent, done.rows_scanned) == ("done", 4, 7)
    assert done.finished_at is not None

    everyone = too_early + failed + [delivered] + retrying + elsewhere
    assert scheduled(parts, everyone) == Counter({m: 1 for m in failed + retrying})
    for item in parts.inbox.queue.find(failed):
        assert Delivery.decode(item.payload).earlier_attempts == 1
    assert not job_runner.run_once()  # nothing left to do
    assert dispatch(parts) == 4  # the retrying two are due in an hour
    resent = Counter(r.headers["webhook-id"] for r in receiver.receiver.on("/ok"))
    assert resent == Counter({m: 1 for m in failed}) + Counter({delivered: 1})

    # Another job over the same window is another recovery: it resends again (once).
    again = start_recovery(pg_engine, jobs, webhook, since=since)
    drain(parts, pg_engine)
    assert run_to_the_end(job_runner, jobs, again.id).messages_sent == 0  # all delivered now


def test_a_message_met_again_in_a_later_batch_is_not_resent_again(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver, jobs: RecoveryJobs
) -> None:
    """Two failed attempts of one message fall in two batches; the resend made at the first
    fails for good too, before the second batch: the job's record of it keeps it at one."""
    webhook = add_webhook(pg_engine, parts.company, f"{receiver.url}/status/503")
    since = datetime.now(UTC)
    message = accept(parts)
    dispatch(parts, max_attempts=2)  # attempt 1: 503, retried
    with parts.spool.schema_transaction() as conn:  # make the retry due now
        conn.execute("UPDATE inbox_items SET due_at = 0")
    dispatch(parts, max_attempts=2)  # attempt 2: 503, the last one
    job = start_recovery(pg_engine, jobs, webhook, since=since)
    job_runner = runner(parts, pg_engine, jobs, batch=1)
    assert job_runner.run_once()  # sees attempt 2: resends
    dispatch(parts, max_attempts=1)  # attempt 3: 503 again, and no retry: failed for good
    done = run_to_the_end(job_runner, jobs, job.id)  # sees attempt 1
    assert (done.messages_sent, done.rows_scanned) == (1, 2)
    assert [r.headers["webhook-id"] for r in receiver.receiver.requests] == [message] * 3
    assert scheduled(parts, [message]) == Counter()


def test_jobs_stay_within_company_limits_and_refuse_bad_input(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver, jobs: RecoveryJobs
) -> None:
    webhook = add_webhook(pg_engine, parts.company, f"{receiver.url}/status/410")
    since = datetime.now(UTC) - timedelta(hours=1)
    job = start_recovery(pg_engine, jobs, webhook, since=since)
    assert job.as_json()["kind"] == "recover" and job.as_json()["state"] == "running"
    stranger = frozenset({add_company(pg_engine, "Other Co")})
    mine = frozenset({parts.company})
    assert job_status(jobs, job.id, companies=mine) == job
    for call, field in (
        (lambda: job_status(jobs, job.id, companies=stranger), "job_id"),
        (lambda: job_status(jobs, "job_unknown"), "job_id"),
        (
            lambda: start_recovery(pg_engine, jobs, webhook, since=since, companies=stranger),
            "webhook_id",
        ),
        (lambda: start_recovery(pg_engine, jobs, uuid.uuid4(), since=since), "webhook_id"),
    ):
        with pytest.raises(InputError) as hidden:
            call()
        assert (hidden.value.status, hidden.value.field) == (404, field)
    for kwargs, field in (
        ({"since": since, "status": "success"}, "status"),
        ({"since": since, "until": since}, "since"),
        ({"since": datetime(2026, 12, 1)}, "since"),
    ):
        with pytest.raises(InputError) as refused:
            start_recovery(pg_engine, jobs, webhook, **kwargs)  # type: ignore[arg-type]
        assert (refused.value.status, refused.value.field) == (422, field)


def test_a_job_whose_webhook_is_disabled_meanwhile_fails_saying_why(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver, jobs: RecoveryJobs
) -> None:
    webhook = add_webhook(pg_engine, parts.company, f"{receiver.url}/status/410")
    since = datetime.now(UTC)
    fail_for_good(parts, 1)
    job = start_recovery(pg_engine, jobs, webhook, since=since)
    set_webhook(pg_engine, webhook, status="disabled")
    runner(parts, pg_engine, jobs, batch=10).run_once()
    stopped = job_status(jobs, job.id)
    assert (stopped.state, stopped.messages_sent) == ("failed", 0)
    assert stopped.error is not None and "disabled" in stopped.error


@pytest.fixture
def env(pg_url: str, spool_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return clean | {"RELAY_DATABASE_URL": pg_url, "RELAY_SPOOL_PATH": str(spool_path)}


@pytest.fixture
def jobs_runner(env: dict[str, str]) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def test_a_job_killed_mid_way_resumes_and_resends_each_message_once(
    parts: Parts,
    pg_engine: Engine,
    receiver: RunningReceiver,
    jobs: RecoveryJobs,
    env: dict[str, str],
    jobs_runner: list[subprocess.Popen[str]],
) -> None:
    webhook = add_webhook(pg_engine, parts.company, f"{receiver.url}/status/410")
    since = datetime.now(UTC)
    failed = fail_for_good(parts, 80)
    drain(parts, pg_engine)
    job = start_recovery(pg_engine, jobs, webhook, since=since)
    set_webhook(pg_engine, webhook, url=f"{receiver.url}/ok")

    command = [RELAY_SCRIPT, "jobs", "run", "--batch-size", "1"]
    killed = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    jobs_runner.append(killed)

    def sent() -> int:
        current = jobs.get(job.id)
        assert current is not None
        return current.messages_sent

    assert eventually(lambda: sent() >= 5, timeout=60, step=0.01), "the runner did not start"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert 5 <= sent() < len(failed), "the runner must be killed in the middle of the job"

    resumed = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{job.id} done: " in resumed.stdout
    finished = job_status(jobs, job.id)
    assert (finished.state, finished.messages_sent) == ("done", len(failed))
    assert scheduled(parts, failed) == Counter({m: 1 for m in failed})
    dispatch_all(parts, len(failed))
    resent = Counter(r.headers["webhook-id"] for r in receiver.receiver.on("/ok"))
    assert resent == Counter({m: 1 for m in failed})
