"""tests/spool collects and passes without importing `relay`: the spool is a library of its
own, and its tests prove it on the in-memory sink and real SQLite files alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def test_the_spool_tests_pass_without_importing_relay() -> None:
    run = subprocess.run(
        [*PYTEST, "-p", "tests.support.no_relay", "tests/spool"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "relay modules loaded: none" in run.stdout, run.stdout[-3000:]
    assert run.returncode == 0, run.stdout[-3000:]
