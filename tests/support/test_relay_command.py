"""The in-process `relay` command gives what the process gives, and leaves no trace behind."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

from tests.support.environment import relay_env
from tests.support.relay_command import InProcessCli, run_relay


def logging_state() -> tuple[object, ...]:
    root = logging.getLogger()
    return (list(root.handlers), root.level, sys.excepthook, logging.getLogger("httpx").level)


@pytest.fixture
def embedded(tmp_path: Path) -> dict[str, str]:
    return relay_env(database_url=f"sqlite:///{tmp_path}/relay.db", spool_path=tmp_path / "s.db")


def test_a_command_leaves_logging_and_settings_as_it_found_them(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    embedded: dict[str, str],
) -> None:
    monkeypatch.setenv("RELAY_BATCH_SIZE", "not even a number")  # a developer's own setting
    before = logging_state()

    result = InProcessCli(monkeypatch, capsys)(embedded, "-v", "spool", "status")

    assert (result.returncode, result.stderr) == (0, "")
    assert "pending: 0 rows" in result.stdout
    assert logging_state() == before
    assert os.environ["RELAY_BATCH_SIZE"] == "not even a number"


@pytest.mark.parametrize(
    "args", [["spool", "dead-letters", "list"], ["spool"]], ids=["list", "usage"]
)
def test_in_process_and_real_process_answer_alike(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    embedded: dict[str, str],
    args: list[str],
) -> None:
    real = run_relay(embedded, *args)
    in_process = InProcessCli(monkeypatch, capsys)(embedded, *args)
    assert (in_process.returncode, in_process.stdout) == (real.returncode, real.stdout)
    assert in_process.stderr.splitlines()[:1] == real.stderr.splitlines()[:1]


def test_standard_input_reaches_the_in_process_command_as_it_reaches_the_process(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    embedded: dict[str, str],
) -> None:
    run = InProcessCli(monkeypatch, capsys)
    assert run(embedded, "migrate").returncode == 0
    args = ("users", "add", "alice", "--role", "admin")
    too_short = "short\n"  # refused for its length, so it must have been read

    real = run_relay(embedded, *args, stdin=too_short)
    in_process = run(embedded, *args, stdin=too_short)
    accepted = run(embedded, *args, stdin="long enough password\n")

    assert (in_process.returncode, in_process.stderr) == (real.returncode, real.stderr)
    assert real.returncode == 2 and "8 to 1024" in real.stderr
    assert (accepted.returncode, accepted.stdout) == (0, "alice\tadmin\t*\tactive\n")
