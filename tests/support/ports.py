"""Loopback ports a test picks first and binds later (or binds again after a restart).

A port taken with `bind(("127.0.0.1", 0))` and released comes from the kernel's ephemeral
range, the range every `bind(0)` and every outgoing connection of every process also draws
from. While such a port sits unbound (a relay between its SIGKILL and its restart, the
PostgreSQL cluster during an outage test, the platform server between stop and start, a port
kept closed on purpose) someone else may get it: with the suite spread over pytest-xdist
workers, another worker's receiver or relay.

So these ports come from below the ephemeral range, where `bind(0)` and `connect` never
look, and each xdist worker (`PYTEST_XDIST_WORKER=gwN`) draws from its own block of them: no
two workers ever hand out the same port. Within a worker a port is handed out once per
block cycle, and only after a probe bind shows nothing holds it.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import socket
import threading
from pathlib import Path

__all__ = ["reserved_port"]

_BLOCK = 1000
"""Ports per worker: far more than one worker has in use at any one time."""
_BLOCKS = 16
"""Worker blocks below the ephemeral range (worker gw16 shares gw0's, and so on)."""
_LOWEST = 10_000
"""Never below this: keep clear of the well-known and registered services."""
_DEFAULT_EPHEMERAL_LOW = 32_768


def _ephemeral_low() -> int:
    """The lowest port of the kernel's ephemeral range (Linux; its default elsewhere)."""
    try:
        low = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
        return int(low)
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_LOW


def _worker_index() -> int:
    """0 for `gw0` (and for a run without xdist), 1 for `gw1`, ..."""
    match = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    return int(match.group(1)) if match else 0


def _block() -> range:
    """This worker's ports."""
    blocks = max(1, min(_BLOCKS, (_ephemeral_low() - _LOWEST) // _BLOCK))
    start = _LOWEST + (_worker_index() % blocks) * _BLOCK
    return range(start, start + _BLOCK)


def _candidates() -> itertools.cycle[int]:
    """This worker's block, round and round from a random place (another suite run on the
    same machine at the same time most likely starts elsewhere)."""
    block = _block()
    offset = random.randrange(len(block))
    return itertools.cycle([*block[offset:], *block[:offset]])


_next = _candidates()
_lock = threading.Lock()


def _bindable(port: int) -> bool:
    """Whether a listener could bind `port` on 127.0.0.1 now (nothing listens or lingers)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def reserved_port() -> int:
    """A loopback port nothing holds, no other xdist worker hands out, and no `bind(0)`
    or outgoing connection on this machine takes: safe to bind later, and again after a
    restart, or to keep closed as a port nothing listens on."""
    with _lock:
        for _ in range(_BLOCK):
            port = next(_next)
            if _bindable(port):
                return port
    raise RuntimeError(f"no free port left in {_block()}")
