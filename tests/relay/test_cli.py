"""The `relay` command as a user runs it, on a real spool and real PostgreSQL: by
`relay.cli.main` in the test process, and as a real process where its signals are tested."""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine

from relay.runtime.wiring import EXECUTION_LOG_QUEUE
from spool import DurableQueue, SpoolDatabase
from tests.support.environment import relay_env
from tests.support.pg_cluster import PgCluster
from tests.support.relay_command import RELAY_SCRIPT, InProcessCli
from tests.support.relay_data import append_results, assert_logged_once, logged_ids


@pytest.fixture
def env(pg_url: str, spool_path: Path) -> dict[str, str]:
    return relay_env(database_url=pg_url, spool_path=spool_path)


def spool_with(spool_path: Path, companies: int, rows: int) -> list[str]:
    db = SpoolDatabase(spool_path)
    queue = DurableQueue(db, EXECUTION_LOG_QUEUE)
    ids = [i for _ in range(companies) for i in append_results(queue, uuid.uuid4(), rows)]
    db.close()
    return ids


def test_migrate_applies_the_schema(
    relay_cli: InProcessCli, pg_cluster: PgCluster, env: dict[str, str]
) -> None:
    pg_cluster.create_database("cli_migrate")
    result = relay_cli(env | {"RELAY_DATABASE_URL": pg_cluster.url("cli_migrate")}, "migrate")
    assert result.returncode == 0, result.stderr
    assert "database migrated to head" in result.stdout


def test_migrate_on_the_embedded_default_needs_no_postgresql(
    relay_cli: InProcessCli, tmp_path: Path, env: dict[str, str]
) -> None:
    env = {k: v for k, v in env.items() if k != "RELAY_DATABASE_URL"}
    result = relay_cli(env, "migrate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "relay.db").exists()


def test_spool_status_shows_pending_per_company(
    relay_cli: InProcessCli, spool_path: Path, env: dict[str, str]
) -> None:
    spool_with(spool_path, companies=3, rows=4)
    result = relay_cli(env, "spool", "status")
    assert result.returncode == 0, result.stderr
    assert "pending: 12 rows for 3 companies; dead letters: 0" in result.stdout
    assert "oldest pending:" in result.stdout
    assert result.stdout.count("       4 ") == 3  # one line per company with its count
    assert "bytes on disk" in result.stdout


def test_drain_once_writes_everything_now_ignoring_size_and_age(
    relay_cli: InProcessCli, spool_path: Path, env: dict[str, str], pg_engine: Engine
) -> None:
    ids = spool_with(spool_path, companies=5, rows=3)  # young and small: not due on its own
    result = relay_cli(env, "drain", "--once")
    assert result.returncode == 0, result.stderr
    assert "drained 15 rows; 0 left in the spool; 0 dead letters" in result.stdout
    assert "batch insert done: 15 rows, 5 companies, 1 transaction" in result.stderr
    assert_logged_once(pg_engine, ids)


def test_drain_once_with_the_database_down_keeps_rows_and_exits_2(
    relay_cli: InProcessCli, spool_path: Path, env: dict[str, str], pg_engine: Engine
) -> None:
    spool_with(spool_path, companies=1, rows=3)
    result = relay_cli(
        env | {"RELAY_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/x"}, "drain", "--once"
    )
    assert result.returncode == 2
    assert "3 rows could not be written and stay in the spool" in result.stderr
    assert "Traceback" not in result.stderr
    assert logged_ids(pg_engine) == []
    status = relay_cli(env, "spool", "status")
    assert "pending: 3 rows" in status.stdout


def test_a_corrupt_spool_is_reported_with_exit_2(
    relay_cli: InProcessCli, spool_path: Path, env: dict[str, str]
) -> None:
    spool_path.parent.mkdir(parents=True)
    spool_path.write_bytes(b"garbage" * 1000)
    result = relay_cli(env, "spool", "status")
    assert result.returncode == 2
    assert "failed its integrity check" in result.stderr
    assert "Traceback" not in result.stderr
    assert spool_path.read_bytes() == b"garbage" * 1000


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RELAY_BATCH_SIZE", "fifty"),
        ("RELAY_BATCH_SIZE", "0"),
        ("RELAY_SPOOL_SYNCHRONOUS", "OFF"),
        ("RELAY_MAX_AGE_SECONDS", "-1"),
        ("RELAY_DATABASE_URL", ""),
        ("RELAY_DATABASE_URL", "not a url"),
        ("RELAY_DATABASE_URL", "postgresql+psycopg://relay:s3cret@db:5432x/relay"),
    ],
)
def test_bad_configuration_names_the_variable_and_exits_2(
    relay_cli: InProcessCli, env: dict[str, str], variable: str, value: str
) -> None:
    result = relay_cli(env | {variable: value}, "spool", "status")
    assert result.returncode == 2
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr  # a URL that does not parse may still hold a password


def test_serve_over_an_unparsable_database_url_exits_2_before_it_starts(
    relay_cli: InProcessCli, env: dict[str, str]
) -> None:
    result = relay_cli(env | {"RELAY_DATABASE_URL": ""}, "serve", "--port", "0")
    assert result.returncode == 2
    assert "RELAY_DATABASE_URL: Value error, not a SQLAlchemy database URL" in result.stderr


@pytest.mark.parametrize("args", [[], ["spool"], ["drain", "--deadline", "-3", "--once"], ["nope"]])
def test_usage_errors_exit_2(relay_cli: InProcessCli, env: dict[str, str], args: list[str]) -> None:
    result = relay_cli(env, *args)
    assert result.returncode == 2
    assert "usage: relay" in result.stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_drain_worker_flushes_on_a_stop_signal_and_exits_0(
    spool_path: Path, env: dict[str, str], pg_engine: Engine, stop_signal: signal.Signals
) -> None:
    ids = spool_with(spool_path, companies=2, rows=5)  # young, under a batch: only a flush
    worker = subprocess.Popen([RELAY_SCRIPT, "drain"], env=env, stderr=subprocess.PIPE, text=True)
    assert worker.stderr is not None
    for line in worker.stderr:  # bounded: the worker logs this line once started
        if "drain running" in line:
            break
    worker.send_signal(stop_signal)
    _, rest = worker.communicate(timeout=60)
    assert worker.returncode == 0, rest
    assert "shutdown flush: 10 rows written, spool empty" in rest
    assert_logged_once(pg_engine, ids)
