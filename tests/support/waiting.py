"""Bounded polling for an observable result of background work (never a sleep as logic)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def eventually(condition: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    """True as soon as `condition()` holds; False if it still does not after `timeout` s.

    Bounded by the clock and by the number of polls alike, so a frozen clock (freezegun)
    cannot make it wait forever.
    """
    pause = threading.Event()
    give_up = time.monotonic() + timeout
    for _ in range(int(timeout / step)):
        if condition():
            return True
        if time.monotonic() >= give_up:
            break
        pause.wait(step)
    return condition()
