"""`relay serve`'s children run at lower CPU priority than intake, the drain lowest: when the
CPU is short a caller's 202 goes first, then deliveries and the platform's streams, then
their log rows."""

from __future__ import annotations

import os
from collections.abc import Callable

import psutil

from tests.support.relay_launcher import RelayProcess
from tests.support.waiting import eventually

ROLES = ("dispatcher", "drain", "platform")


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


def assert_niceness(relay: RelayProcess, expected: dict[str, int]) -> None:
    assert relay.process is not None
    pid = relay.process.pid
    assert eventually(lambda: niceness_by_role(pid) == expected, timeout=60), niceness_by_role(pid)
    assert psutil.Process(pid).nice() == os.nice(0)  # intake keeps the caller's


def test_by_default_the_children_yield_the_cpu_dispatcher_before_drain(
    serving_relay: RelayProcess,
) -> None:
    assert_niceness(serving_relay, {"dispatcher": 10, "drain": 19, "platform": 10})


def test_the_childrens_niceness_is_configurable(
    relay_processes: Callable[..., RelayProcess],
) -> None:
    relay = relay_processes(background_nice=5, drain_nice=12).start()
    try:
        assert_niceness(relay, {"dispatcher": 5, "drain": 12, "platform": 5})
    finally:
        relay.stop_cleanly()
