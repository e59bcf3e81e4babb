"""Bounded polling for an observable result of background work (never a sleep as logic)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def eventually(condition: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    """True as soon as `condition()` holds; False if it still does not after `timeout` s."""
    pause = threading.Event()
    for _ in range(int(timeout / step)):
        if condition():
            return True
        pause.wait(step)
    return condition()
