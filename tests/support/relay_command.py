"""Running one `relay` command, as a real process or in the test process.

A real process (`run_relay`) where the process itself is under test: its exit on a signal, a
crash, its children. Everywhere else `run_cli` calls `relay.cli.main(argv)` directly, which
costs no interpreter start and no imports (about half a second per command here), with the
same settings (read from the environment), the same output and the same exit code.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.cli import main
from tests.support.environment import use_relay_settings
from tests.support.logging_state import logging_restored

RELAY_SCRIPT = str(Path(sys.executable).with_name("relay"))
"""The `relay` console script of the interpreter running the tests."""


def run_relay(
    env: Mapping[str, str],
    *args: str,
    cwd: Path | None = None,
    timeout: float = 60,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`relay ARGS...` as a real process; its output captured, its exit code not checked;
    `stdin`, if given, is what it reads on standard input (a password)."""
    return subprocess.run(
        [RELAY_SCRIPT, *args],
        env=dict(env),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class CliResult:
    """What an in-process `relay` command printed and returned (named as `CompletedProcess`
    names them, so a test reads the same either way)."""

    returncode: int
    stdout: str
    stderr: str


class InProcessCli:
    """`relay ARGS...` run by `relay.cli.main` in the test process, with `env`'s `RELAY_*`
    variables as its settings, `stdin` (if given) as its standard input (not a terminal, as
    a pipe is not) and its output captured by pytest's `capsys`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self._monkeypatch = monkeypatch
        self._capsys = capsys

    def __call__(
        self,
        env: Mapping[str, str],
        *args: str,
        cwd: Path | None = None,
        stdin: str | None = None,
    ) -> CliResult:
        self._capsys.readouterr()  # what came before is not this command's output
        with self._monkeypatch.context() as patch, logging_restored():
            use_relay_settings(patch, env)
            if cwd is not None:
                patch.chdir(cwd)
            if stdin is not None:
                patch.setattr(sys, "stdin", io.StringIO(stdin))
            code = _exit_code(list(args))
        out, err = self._capsys.readouterr()
        return CliResult(code, out, err)


def _exit_code(argv: list[str]) -> int:
    """`main`'s return value, or the code of the `SystemExit` argparse raises (usage errors
    exit 2, `--version` 0), as the process would exit."""
    try:
        return main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
