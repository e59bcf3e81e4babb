"""Short garbage-collector pauses in the relay's long-running processes.

A full collection walks every tracked object. Each relay process starts with about 80,000
of them (SQLAlchemy, pydantic, uvicorn, httpx, the registry ...), and a full pass over them
took 74-87 ms on the benchmark machine, several times a minute at 500 events/s; intake's
event loop answered nothing meanwhile, which was the tail of intake latency (measured with
`gc.callbacks`, 2026-12-01). What start-up made lives as long as the process, so once a
process is up it is moved to the permanent generation (`gc.freeze`), which collections
skip; they then walk only what the process made since.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze_startup_heap(process: str) -> int:
    """Collect start-up's garbage once, then exempt what survived from later collections.

    Returns how many objects are frozen (all of them, with any frozen earlier).
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("%s: %d start-up objects exempt from garbage collection", process, frozen)
    return frozen
