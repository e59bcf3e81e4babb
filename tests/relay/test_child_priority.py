"""`relay serve`'s children run at lower CPU priority than intake, the drain lowest: when the
CPU is short a caller's 202 goes first, then deliveries, then their log rows."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.relay.test_relay_e2e import free_port
from tests.support.environment import relay_env
from tests.support.relay_command import RELAY_SCRIPT
from tests.support.waiting import eventually

ROLES = ("dispatcher", "drain")


def niceness_by_role(pid: int) -> dict[str, int]:
    """Niceness of the relay's children, by the `relay` command each runs."""
    found = {}
    for child in psutil.Process(pid).children():
        try:
            role = next((a for a in child.cmdline() if a in ROLES), None)
            if role is not None:
                found[role] = child.nice()
        except psutil.Error:  # a child that exited meanwhile
            continue
    return found


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, {"dispatcher": 10, "drain": 19}),
        ({"RELAY_BACKGROUND_NICE": "5", "RELAY_DRAIN_NICE": "12"}, {"dispatcher": 5, "drain": 12}),
    ],
    ids=["defaults", "configured"],
)
def test_children_yield_the_cpu_dispatcher_before_drain(
    pg_url: str, tmp_path: Path, settings: dict[str, str], expected: dict[str, int]
) -> None:
    env = relay_env(database_url=pg_url, spool_path=tmp_path / "spool.db") | settings
    process = subprocess.Popen(
        [RELAY_SCRIPT, "serve", "--port", str(free_port())],
        env=env,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert eventually(lambda: niceness_by_role(process.pid) == expected, timeout=60), (
            niceness_by_role(process.pid)
        )
        assert psutil.Process(process.pid).nice() == os.nice(0)  # intake keeps the caller's
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
