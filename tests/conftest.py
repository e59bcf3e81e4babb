"""Fixtures every part of the suite shares, none of them the relay's: a real throwaway
PostgreSQL cluster and real spool files. `tests/spool` runs on these alone (it must pass
without importing `relay`); the relay's own fixtures are in `tests/support/relay_fixtures.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import freezegun
import pytest

from spool import DurableQueue, SpoolDatabase
from tests.support.pg_cluster import PgCluster
from tests.support.scheduling import is_xdist_worker, longest_modules_first

FAULT_SCENARIO_LINES = "fault_scenario_lines"
"""The key under which an xdist worker hands the controller its fault scenarios' figures."""
_fault_scenario_lines: list[str] = []  # the controller's, from every worker

# pytest's own clock (`_pytest.timing`, which `--durations` reads) keeps the real time while
# a test has frozen it: without this a frozen test's setup "took" 56 years.
freezegun.configure(extend_ignore_list=["_pytest"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that uses the PostgreSQL cluster, directly or through another fixture,
    carries the `postgres` marker, so `pytest -m "not postgres"` runs the rest; on
    pytest-xdist's workers the longest modules come first (tests/support/scheduling.py)."""
    for item in items:
        if "pg_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
    if is_xdist_worker(config):  # `make test`: the longest modules go out first
        longest_modules_first(items)


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """One PostgreSQL server for the whole run; outage tests stop and start it."""
    with PgCluster(tmp_path_factory.mktemp("pg"), fsync=False) as cluster:
        yield cluster


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "spool.db"


@pytest.fixture
def spool_db(spool_path: Path) -> Iterator[SpoolDatabase]:
    db = SpoolDatabase(spool_path)
    yield db
    db.close()


@pytest.fixture
def outbox(spool_db: SpoolDatabase) -> DurableQueue:
    return DurableQueue(spool_db, "outbox")


def print_fault_scenarios(terminalreporter: pytest.TerminalReporter, lines: list[str]) -> None:
    """tests/faults' section at the end of the session: one line of figures per scenario."""
    terminalreporter.section(f"fault scenarios ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    for line in lines:
        terminalreporter.write_line(line)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist's controller: keep the fault scenarios' lines of a worker that is done
    (tests/faults/conftest.py hands them over)."""
    _fault_scenario_lines.extend(getattr(node, "workeroutput", {}).get(FAULT_SCENARIO_LINES, []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _fault_scenario_lines:
        print_fault_scenarios(terminalreporter, _fault_scenario_lines)
