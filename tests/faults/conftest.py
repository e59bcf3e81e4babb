"""Fixtures of the fault scenarios; the session ends with one line of figures per scenario."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.faults.harness import (
    REPORT,
    RelayProcess,
    fault_relay_env,
)
from tests.support.receivers import PostLog
from tests.support.relay_fixtures import outbox, pg_engine, pg_url, sink


@pytest.fixture
def post_log() -> PostLog:
    return PostLog()


@pytest.fixture
def relays(pg_url: str, pg_engine: Engine, tmp_path: Path) -> Iterator[Callable[..., RelayProcess]]:
    """Make relay slots (own spool and log each) on the suite's freshly emptied database.

    Whatever is still running at teardown is SIGKILLed.
    """
    made: list[RelayProcess] = []

    def make(name: str = "relay", **overrides: str) -> RelayProcess:
        env = fault_relay_env(pg_url, tmp_path / name / "spool.db", **overrides)
        relay = RelayProcess(env, tmp_path / f"{name}.log")
        made.append(relay)
        return relay

    yield make
    for relay in made:
        relay.kill()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORT:
        return
    terminalreporter.section(f"fault scenarios ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    for figures in REPORT:
        terminalreporter.write_line(figures.line())
