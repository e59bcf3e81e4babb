"""`freeze_startup_heap`: start-up's objects leave the collector's walks; later garbage does not."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from relay.runtime.heap import freeze_startup_heap
from tests.support.relay_launcher import RelayProcess
from tests.support.waiting import eventually


@pytest.fixture
def unfrozen_afterwards() -> Iterator[None]:
    try:
        yield
    finally:
        gc.unfreeze()  # the test process goes on collecting as before


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector can free it


@pytest.mark.usefixtures("unfrozen_afterwards")
def test_what_exists_is_frozen_and_a_cycle_made_later_is_still_collected() -> None:
    before = Node()
    frozen = freeze_startup_heap("test")
    # Frozen objects can still be freed (by this test process's other threads, left by the
    # tests before it on this worker), and nothing joins them until the next freeze.
    assert 0 < gc.get_freeze_count() <= frozen
    later = Node()
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None
    kept = weakref.ref(before)
    del before
    gc.collect()
    assert kept() is not None  # frozen: the collector no longer looks at it


def test_each_relay_process_freezes_its_start_up_heap(serving_relay: RelayProcess) -> None:
    def frozen() -> set[str]:
        return {
            line.split("relay.runtime.heap: ")[1].split(":")[0]
            for line in serving_relay.log_text().splitlines()
            if "start-up objects exempt from garbage collection" in line
        }

    assert eventually(
        lambda: frozen() == {"intake", "dispatcher", "drain", "platform"}, timeout=60
    ), serving_relay.log_text()
