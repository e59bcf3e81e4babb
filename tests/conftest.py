"""Fixtures every part of the suite shares, none of them the relay's: a real throwaway
PostgreSQL cluster and real spool files. `tests/spool` runs on these alone (it must pass
without importing `relay`); the relay's own fixtures are in `tests/support/relay_fixtures.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import freezegun
import pytest

from spool import DurableQueue, SpoolDatabase
from tests.support.pg_cluster import PgCluster

# pytest's own clock (`_pytest.timing`, which `--durations` reads) keeps the real time while
# a test has frozen it: without this a frozen test's setup "took" 56 years.
freezegun.configure(extend_ignore_list=["_pytest"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the PostgreSQL cluster, directly or through another fixture,
    carries the `postgres` marker, so `pytest -m "not postgres"` runs the rest."""
    for item in items:
        if "pg_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


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
