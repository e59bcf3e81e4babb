"""The relay's fixtures over the suite's PostgreSQL cluster: a migrated database, an engine
on an empty execution log, the sink, the relay's outbox, `relay serve` processes and the
in-process `relay` command. Imported by the conftest files of the tests that need them, so
`tests/spool` never imports `relay`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db import migrations
from relay.db.engine import make_engine
from relay.execution_log.sink import ExecutionLogSink
from relay.runtime.wiring import EXECUTION_LOG_QUEUE
from spool import DurableQueue, SpoolDatabase
from tests.support.environment import relay_env
from tests.support.pg_cluster import PgCluster
from tests.support.relay_command import InProcessCli
from tests.support.relay_data import TEST_DATABASE
from tests.support.relay_launcher import RelayProcess


@pytest.fixture(scope="session")
def pg_url(pg_cluster: PgCluster) -> str:
    pg_cluster.create_database(TEST_DATABASE)
    url = pg_cluster.url(TEST_DATABASE)
    migrations.upgrade(url)
    return url


@pytest.fixture
def pg_engine(pg_url: str, pg_cluster: PgCluster) -> Iterator[Engine]:
    """An engine on a migrated database whose execution log starts empty."""
    if not pg_cluster.running:  # an outage test that failed half-way
        pg_cluster.start()
    engine = make_engine(pg_url, timeout_seconds=5)
    with engine.begin() as conn:
        conn.execute(
            sa.text("TRUNCATE webhook_executions, webhook_events, webhooks, companies CASCADE")
        )
    yield engine
    engine.dispose()


@pytest.fixture
def sink(pg_engine: Engine) -> ExecutionLogSink:
    return ExecutionLogSink(pg_engine)


@pytest.fixture
def outbox(spool_db: SpoolDatabase) -> DurableQueue:
    return DurableQueue(spool_db, EXECUTION_LOG_QUEUE)


@pytest.fixture
def relay_processes(
    pg_url: str, pg_engine: Engine, tmp_path: Path
) -> Iterator[Callable[..., RelayProcess]]:
    """Make `relay serve` slots (own spool and log each, settings by `RelaySettings` name)
    on the suite's freshly emptied database, receivers on 127.0.0.1 allowed.

    Whatever is still running at teardown is SIGKILLed.
    """
    made: list[RelayProcess] = []

    def make(name: str = "relay", **settings: object) -> RelayProcess:
        defaults: dict[str, object] = {
            "database_url": pg_url,
            "spool_path": tmp_path / name / "spool.db",
            "allow_private_destinations": True,
        }
        relay = RelayProcess(relay_env(**(defaults | settings)), tmp_path / f"{name}.log")
        made.append(relay)
        return relay

    yield make
    for relay in made:
        relay.kill()


@pytest.fixture(scope="session")
def serving_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """One `relay serve` with the default settings on the embedded SQLite database, shared
    by the tests that only look at a started relay (its children's niceness, its start-up
    log lines); SIGTERMed at the end of the session, and it must then exit 0."""
    directory = tmp_path_factory.mktemp("serving")
    env = relay_env(
        database_url=f"sqlite:///{directory / 'relay.db'}", spool_path=directory / "spool.db"
    )
    relay = RelayProcess(env, directory / "relay.log").start()
    yield relay
    relay.stop_cleanly()


@pytest.fixture
def relay_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcessCli:
    """`relay ARGS...` run in the test process: `relay_cli(env, "spool", "status")`."""
    return InProcessCli(monkeypatch, capsys)
