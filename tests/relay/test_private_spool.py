"""The relay refuses to start over a spool other users may read: exit 2, the path, the fix."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from spool import DurableQueue, SpoolDatabase
from tests.support.environment import relay_env
from tests.support.relay_command import run_relay


def relay(tmp_path: Path, spool_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = relay_env(database_url=f"sqlite:///{tmp_path}/db/relay.db", spool_path=spool_path)
    return run_relay(env, *args)


@pytest.fixture
def spool(spool_path: Path) -> Path:
    db = SpoolDatabase(spool_path)
    DurableQueue(db, "outbox").append("k", b"x")
    db.close()
    return spool_path


@pytest.mark.parametrize("command", [["spool", "status"], ["serve", "--port", "0"]])
def test_a_spool_file_others_may_read_stops_the_relay(
    tmp_path: Path, spool: Path, command: list[str]
) -> None:
    os.chmod(spool, 0o644)
    result = relay(tmp_path, spool, *command)
    assert result.returncode == 2
    assert f"spool file {spool} has mode 644" in result.stderr
    assert f"chmod 600 {spool}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_spool_directory_others_may_read_stops_the_relay(tmp_path: Path, spool: Path) -> None:
    os.chmod(spool.parent, 0o755)
    result = relay(tmp_path, spool, "serve", "--port", "0")
    assert result.returncode == 2
    assert f"chmod 700 {spool.parent}" in result.stderr
    assert "Traceback" not in result.stderr
