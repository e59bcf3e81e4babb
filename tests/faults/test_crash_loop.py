"""Scenario 1: steady load, the relay SIGKILLed at random moments (also while a drain
transaction is open and while a delivery is in flight) and restarted each time.

FAULTS_KILLS SIGKILLs (12 by default, four of each kind, so `make test` stays short;
`make soak` kills 100 times)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
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
from tests.support.waiting import eventually

# alone: its 200 events a second keep coming through twelve restarts of four processes each;
# on a CPU shared with other pytest workers the restarts, and so the scenario, took minutes.
pytestmark = [pytest.mark.faults, pytest.mark.alone]

KILLS = int(os.environ.get("FAULTS_KILLS", "12"))
RATE = float(os.environ.get("FAULTS_RATE", "200"))


def test_crash_loop_loses_nothing_and_duplicates_nothing(
    relays: Callable[..., RelayProcess], pg_engine: Engine, post_log: PostLog
) -> None:
    started = time.monotonic()
    seed = int(os.environ.get("FAULTS_SEED", str(time.time_ns())))
    print(f"crash loop seed {seed} (FAULTS_SEED to replay the kill timing)")
    rng = random.Random(seed)
    pause = threading.Event()
    with running_receiver(post_log) as (receiver, url):
        companies = add_all_and_even_companies(pg_engine, "crash", url, 3)
        relay = relays("relay").start()
        load = LoadGenerator(
            [lambda: relay.url],
            companies,
            rate=RATE,
            max_events=50_000,
            prefix="crash",
            threads=8,
        ).start()
        modes: Counter[str] = Counter()
        for n in range(KILLS):
            mode = ("random", "drain", "in-flight")[n % 3]
            if mode == "random":
                pause.wait(rng.uniform(0.05, 1.0))
                relay.kill()
            elif mode == "drain":
                # "batch insert:" is logged just before the drain transaction begins.
                if not eventually(lambda: "batch insert:" in relay.log_since_start(), 5, 0.005):
                    mode = "drain (none seen)"
                pause.wait(rng.uniform(0, 0.02))
                log = relay.log_since_start()
                if log.rfind("batch insert:") > log.rfind("batch insert done"):
                    mode = "drain (transaction open)"
                relay.kill()
            else:
                fired = threading.Event()
                assert relay.process is not None
                pid = relay.process.pid

                def kill_now(pid: int = pid, fired: threading.Event = fired) -> None:
                    if not fired.is_set():  # the POST is at the receiver, not yet answered
                        fired.set()
                        os.kill(pid, signal.SIGKILL)

                receiver.on_request = kill_now
                if not fired.wait(5):
                    mode = "in-flight (no POST seen)"
                receiver.on_request = None
                relay.kill()
            modes[mode] += 1
            relay.start()
        load.stop()
        load_seconds = time.monotonic() - started
        accepted = list(load.accepted.values())
        assert not load.unexpected, load.unexpected[:10]
        assert wait_delivered(post_log, accepted, timeout=90)
        relay.stop_cleanly()
    check(
        "1 crash loop",
        accepted=accepted,
        posts=post_log.posts(),
        rows=execution_rows(pg_engine),
        spools=[spool_state(relay.spool_path)],
        exact=False,
        started=started,
        extra={
            "kills": KILLS,
            "starts": relay.starts,
            "modes": dict(modes),
            "seed": seed,
            "events_per_s": round(len(accepted) / load_seconds),
        },
    )
