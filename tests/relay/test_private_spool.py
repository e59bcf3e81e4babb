"""The relay refuses to start over a spool other users may read: exit 2, the path, the fix."""

from __future__ import annotations

import os
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from spool import DurableQueue, SpoolDatabase
from tests.support.environment import relay_env
from tests.support.relay_command import CliResult, InProcessCli, run_relay


def env_of(tmp_path: Path, spool_path: Path) -> dict[str, str]:
    return relay_env(database_url=f"sqlite:///{tmp_path}/db/relay.db", spool_path=spool_path)


@pytest.fixture
def spool(spool_path: Path) -> Path:
    db = SpoolDatabase(spool_path)
    DurableQueue(db, "outbox").append("k", b"x")
    db.close()
    return spool_path


def assert_refused_for_its_mode(result: CliResult | CompletedProcess[str], spool: Path) -> None:
    assert result.returncode == 2
    assert f"spool file {spool} has mode 644" in result.stderr
    assert f"chmod 600 {spool}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_spool_file_others_may_read_stops_a_command(
    relay_cli: InProcessCli, tmp_path: Path, spool: Path
) -> None:
    os.chmod(spool, 0o644)
    assert_refused_for_its_mode(relay_cli(env_of(tmp_path, spool), "spool", "status"), spool)


def test_a_spool_file_others_may_read_stops_relay_serve(tmp_path: Path, spool: Path) -> None:
    """A real process: were the check gone, an in-process `serve` would serve for ever."""
    os.chmod(spool, 0o644)
    result = run_relay(env_of(tmp_path, spool), "serve", "--port", "0")
    assert_refused_for_its_mode(result, spool)


def test_a_spool_directory_others_may_read_stops_the_relay(tmp_path: Path, spool: Path) -> None:
    os.chmod(spool.parent, 0o755)
    result = run_relay(env_of(tmp_path, spool), "serve", "--port", "0")
    assert result.returncode == 2
    assert f"chmod 700 {spool.parent}" in result.stderr
    assert "Traceback" not in result.stderr
