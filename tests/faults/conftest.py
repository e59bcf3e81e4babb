"""Fixtures of the fault scenarios; the session ends with one line of figures per scenario."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import FAULT_SCENARIO_LINES, print_fault_scenarios
from tests.faults.harness import REPORT
from tests.support.receivers import PostLog
from tests.support.relay_fixtures import outbox, pg_engine, pg_url, relay_processes, sink
from tests.support.relay_launcher import RelayProcess

CONVERGE_FAST: dict[str, object] = {
    "max_age_seconds": 1,
    "drain_interval_seconds": 0.2,
    "retry_schedule_seconds": "0.2,0.5,1",
    "shutdown_grace_seconds": 2,
    "shutdown_flush_seconds": 15,
    "registry_check_seconds": 0.5,
    "http_timeout_seconds": 2,
    "db_timeout_seconds": 3,
    "max_per_host": 32,
}
"""A scenario's relay settles within seconds: short ages, retries and deadlines."""


@pytest.fixture
def post_log() -> PostLog:
    return PostLog()


@pytest.fixture
def relays(relay_processes: Callable[..., RelayProcess]) -> Callable[..., RelayProcess]:
    """`relay serve` slots tuned to converge fast; a scenario's settings win."""

    def make(name: str = "relay", **settings: object) -> RelayProcess:
        return relay_processes(name, **(CONVERGE_FAST | settings))

    return make


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Without xdist; with it the workers hand their lines to the controller instead, which
    prints them (`fault_scenario_lines`, tests/conftest.py)."""
    if REPORT:
        print_fault_scenarios(terminalreporter, [figures.line() for figures in REPORT])


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its lines go back to the controller
        workeroutput[FAULT_SCENARIO_LINES] = [figures.line() for figures in REPORT]
        REPORT.clear()
