"""The relay refuses to start over a spool other users may read: exit 2, the path, the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spool import DurableQueue, SpoolDatabase

RELAY = str(Path(sys.executable).with_name("relay"))


def run_relay(tmp_path: Path, spool_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")} | {
        "RELAY_DATABASE_URL": f"sqlite:///{tmp_path}/db/relay.db",
        "RELAY_SPOOL_PATH": str(spool_path),
    }
    return subprocess.run(
        [RELAY, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


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
    result = run_relay(tmp_path, spool, *command)
    assert result.returncode == 2
    assert f"spool file {spool} has mode 644" in result.stderr
    assert f"chmod 600 {spool}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_spool_directory_others_may_read_stops_the_relay(tmp_path: Path, spool: Path) -> None:
    os.chmod(spool.parent, 0o755)
    result = run_relay(tmp_path, spool, "serve", "--port", "0")
    assert result.returncode == 2
    assert f"chmod 700 {spool.parent}" in result.stderr
    assert "Traceback" not in result.stderr
