"""Scenario 9: three relay processes, each with its own spool, into one PostgreSQL; one of
them is SIGKILLed again and again. Nothing lost, nothing twice, across all three.

FAULTS_THREE_RELAY_KILLS SIGKILLs (6 by default, so `make test` stays short; `make soak`
kills 30 times)."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from tests.faults.harness import (
    LoadGenerator,
    add_all_and_even_companies,
    check,
    execution_rows,
    spool_state,
    wait_delivered,
)
from tests.support.receivers import PostLog, running_receiver
from tests.support.relay_launcher import RelayProcess

pytestmark = pytest.mark.faults

KILLS = int(os.environ.get("FAULTS_THREE_RELAY_KILLS", "6"))


def test_three_relays_one_killed_repeatedly(
    relays: Callable[..., RelayProcess], pg_engine: Engine, post_log: PostLog
) -> None:
    started = time.monotonic()
    seed = int(os.environ.get("FAULTS_SEED", str(time.time_ns())))
    rng = random.Random(seed)
    pause = threading.Event()
    with running_receiver(post_log) as (_, url):
        companies = add_all_and_even_companies(pg_engine, "three relays", url, 4)
        fleet = [relays(f"relay{n}").start() for n in range(3)]
        # Event n always goes to the same relay (its id is idempotent in that relay's spool).
        load = LoadGenerator(
            [relay.url_getter() for relay in fleet],
            companies,
            rate=150,
            max_events=50_000,
            prefix="three",
            threads=6,
        ).start()
        victim = fleet[0]
        for _ in range(KILLS):
            pause.wait(rng.uniform(0.2, 1.2))
            victim.kill()
            victim.start()
        load.stop()
        accepted = list(load.accepted.values())
        assert not load.unexpected, load.unexpected[:10]
        assert wait_delivered(post_log, accepted, timeout=90)
        for relay in fleet:
            relay.stop_cleanly()
    check(
        "9 three relays, one killed",
        accepted=accepted,
        posts=post_log.posts(),
        rows=execution_rows(pg_engine),
        spools=[spool_state(relay.spool_path) for relay in fleet],
        exact=False,
        started=started,
        extra={"kills": KILLS, "seed": seed},
    )
