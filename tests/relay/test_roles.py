"""The relay's roles as production runs them: `relay serve` with its dispatcher and drain
children, and the three roles as units of their own (as systemd or Kubernetes runs them).

Real processes on the suite's PostgreSQL, a real receiver on 127.0.0.1; every wait is a
bounded poll for something observable.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from relay.ops.metrics import MULTIPROCESS_ENV
from tests.faults.harness import spool_state
from tests.relay.conftest import add_company, add_webhook
from tests.relay.test_operations import scrape
from tests.support import http_calls
from tests.support.environment import relay_env
from tests.support.ports import reserved_port
from tests.support.receivers import RunningReceiver
from tests.support.relay_command import RELAY_SCRIPT
from tests.support.relay_data import logged_ids, sample_event
from tests.support.relay_launcher import RelayProcess
from tests.support.waiting import eventually

HOURS = str(2 * 3600)  # a drain interval and row age no test waits for


def post(url: str, company: object, n: int) -> None:
    body = {"company_id": str(company), "event": "call-history-was-created", "data": sample_event()}
    answer = http_calls.post(f"{url}/v1/events", json=body | {"id": f"role-{n}"}, timeout=10)
    assert answer.status_code == 202, answer.text


def test_the_dispatchers_fiftieth_log_row_wakes_the_drain_process(
    relay_processes: Callable[..., RelayProcess], pg_engine: Engine, receiver: RunningReceiver
) -> None:
    """The drain polls every two hours and waits two hours for a young row: only the wake-up
    through the pipe from the dispatcher process can bring 50 rows to PostgreSQL now."""
    company = add_company(pg_engine)
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay = relay_processes(drain_interval_seconds=HOURS, max_age_seconds=HOURS).start()
    try:
        # The drain's start-up run is over: it cannot be what drains the rows below, and a
        # wake-up during it is not lost to it. "drain running" is logged before that run
        # ends; the gauge is set when its cycle has finished.
        assert eventually(lambda: "drain running" in relay.log_since_start(), timeout=60)
        last_success = ("relay_drain_last_success_timestamp_seconds", ())
        assert eventually(lambda: scrape(relay).get(last_success, 0.0) > 0, timeout=60)
        for n in range(49):
            post(relay.url, company, n)
        assert eventually(lambda: spool_state(relay.spool_path).outbox == 49, timeout=60)
        assert logged_ids(pg_engine) == []  # 49 rows: not a batch, nothing woke the drain

        post(relay.url, company, 49)
        assert eventually(lambda: len(logged_ids(pg_engine)) == 50, timeout=30), (
            len(logged_ids(pg_engine)),
            spool_state(relay.spool_path),
            relay.log_since_start()[-4000:],
        )
        # The drain counts its batch just after the commit that made the rows visible.
        batches = ("relay_drain_batches_total", ())
        assert eventually(lambda: scrape(relay).get(batches, 0.0) > 0, timeout=30)
        assert scrape(relay)[batches] == 1
    finally:
        relay.stop_cleanly()


@dataclass(frozen=True)
class Endpoint:
    url: str


class Unit:
    """One `relay ...` command run on its own, as a service manager runs it: no parent
    relay, no pipes; its output goes to a log file."""

    def __init__(self, arguments: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [RELAY_SCRIPT, *arguments],
                env=env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_line(self, text: str) -> None:
        assert eventually(
            lambda: text in self.log() or self.process.poll() is not None, timeout=60
        ), self.log()
        assert self.process.poll() is None, self.log()

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


@pytest.fixture
def units() -> Iterator[list[Unit]]:
    """Units started by a test; SIGKILLed at teardown if still running."""
    started: list[Unit] = []
    yield started
    for unit in started:
        unit.kill()


def test_the_three_roles_run_as_units_of_their_own(
    pg_url: str, pg_engine: Engine, tmp_path: Path, receiver: RunningReceiver, units: list[Unit]
) -> None:
    """`relay serve --intake-only`, `relay dispatcher` and `relay drain`, none started by
    another: the dispatcher (no arguments) polls the inbox and delivers, the drain writes the
    log row, intake's /metrics shows what the roles count, and each stops on SIGTERM with 0."""
    company = add_company(pg_engine)
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    spool_path = tmp_path / "spool.db"
    env = relay_env(
        database_url=pg_url,
        spool_path=spool_path,
        allow_private_destinations=True,  # the receiver is on 127.0.0.1
        max_age_seconds=1,
        drain_interval_seconds=0.2,
    )
    port = reserved_port()
    intake = Unit(["serve", "--intake-only", "--port", str(port)], env, tmp_path / "intake.log")
    units.append(intake)
    intake.wait_for_line("Uvicorn running")  # it has made the roles' metrics directory
    roles_env = env | {MULTIPROCESS_ENV: f"{spool_path}.metrics"}
    dispatcher = Unit(["dispatcher"], roles_env, tmp_path / "dispatcher.log")
    drain = Unit(["drain"], roles_env, tmp_path / "drain.log")
    units += [dispatcher, drain]
    dispatcher.wait_for_line("dispatcher running")
    drain.wait_for_line("drain running")
    url = f"http://127.0.0.1:{port}"
    assert http_calls.get(f"{url}/readyz", timeout=30).json() == {"ready": True}

    post(url, company, 0)
    assert eventually(lambda: len(receiver.receiver.on("/ok")) == 1, timeout=30)
    assert eventually(lambda: len(logged_ids(pg_engine)) == 1, timeout=30)  # row age: 1 s
    # Each role counts just after what it counts is visible (the POST answered, the rows
    # committed): wait for both counts, then check that each is exactly one.
    delivered = ("relay_deliveries_total", (("outcome", "success"),))
    drained = ("relay_drain_rows_total", ())
    counted = (delivered, drained)
    assert eventually(lambda: all(scrape(Endpoint(url)).get(k, 0.0) > 0 for k in counted), 30)
    samples = scrape(Endpoint(url))
    assert samples[delivered] == 1
    assert samples[drained] == 1

    assert dispatcher.terminate() == 0, dispatcher.log()
    assert drain.terminate() == 0, drain.log()
    assert intake.terminate() == 0, intake.log()
    assert len(receiver.receiver.on("/ok")) == 1
