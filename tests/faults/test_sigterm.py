"""Scenario 10: SIGTERM under load. The relay turns new events away, lets POSTs in flight
finish within the grace period (hands the rest back to the inbox), flushes the execution log
within its deadline and exits 0; after a restart everything is delivered exactly as promised."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from tests.faults.harness import (
    Hook,
    LoadGenerator,
    add_company,
    check,
    execution_rows,
    row_count,
    spool_state,
    wait_delivered,
)
from tests.support.receivers import PostLog, running_receiver
from tests.support.relay_launcher import RelayProcess
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

GRACE = 1.5
FLUSH = 15.0
TENTH = ({"field_path": "tenth", "operator": "equals", "value": True},)
# The dispatcher stops first, then the drain flushes (its own process, its own line).
STOPPED = re.compile(
    r"dispatcher stopped: (\d+) deliveries wait in the inbox \((\d+) handed back in flight\)"
    r".*drain stopped: execution log flushed (\d+) rows, (\d+) stay in the spool",
    re.DOTALL,
)


def test_sigterm_under_load_drains_flushes_and_exits_0(
    relays: Callable[..., RelayProcess], pg_engine: Engine, post_log: PostLog
) -> None:
    started = time.monotonic()
    with (
        running_receiver(post_log) as (receiver, url),
        running_receiver(post_log) as (_, slow_url),
    ):
        companies = [
            add_company(
                pg_engine,
                f"sigterm {n}",
                [
                    Hook("fast", f"{url}/fast/ok"),
                    Hook("slow", f"{url}/slow/slow/0.3"),  # finishes within the grace period
                    # Its own host: finishes after the grace period, so it is handed back.
                    Hook("slower", f"{slow_url}/slower/slow/2.5", TENTH),
                ],
            )
            for n in range(2)
        ]
        # Nothing drains on its own (huge batch, long age): the shutdown flush must write it all.
        relay = relays(
            "relay",
            shutdown_grace_seconds=GRACE,
            shutdown_flush_seconds=FLUSH,
            max_age_seconds="300",
            batch_size="10000",
            http_timeout_seconds="10",
        ).start()
        load = LoadGenerator(
            [lambda: relay.url], companies, rate=150, max_events=900, prefix="term", threads=6
        ).start()
        assert eventually(lambda: load.count() >= 300 and receiver.in_flight > 0, 20)
        in_flight_at_term = receiver.in_flight
        term_at = time.monotonic()
        code, seconds = relay.terminate(timeout=GRACE + FLUSH + 30)
        assert code == 0, relay.log_since_start()[-3000:]
        assert seconds <= GRACE + FLUSH + 5, f"took {seconds:.1f} s to stop"
        stopped = STOPPED.search(relay.log_since_start())
        assert stopped is not None, relay.log_since_start()[-3000:]
        waiting, handed_back, flushed, left = map(int, stopped.groups())
        assert left == 0 and flushed > 0
        assert row_count(pg_engine) == flushed  # every row reached PostgreSQL at the stop
        state = spool_state(relay.spool_path)
        assert (state.inbox, state.outbox) == (waiting, 0)
        after_term = Counter(status for at, status in load.answers if at > term_at + 0.05)
        assert set(after_term) <= {503, None}, after_term  # turned away, never a 202 or a 5xx
        relay.start()
        assert load.wait_done(60)
        accepted = list(load.accepted.values())
        assert not load.unexpected, load.unexpected[:10]
        assert wait_delivered(post_log, accepted, timeout=60)
        relay.stop_cleanly()
    rows = execution_rows(pg_engine)
    posts = post_log.posts()
    unrecorded = {p.webhook_id for p in posts} - {r.message_id for r in rows}
    # Only attempts cancelled at the grace deadline may have gone unrecorded.
    assert len(unrecorded) <= handed_back
    check(
        "10 SIGTERM under load",
        accepted=accepted,
        posts=posts,
        rows=rows,
        spools=[spool_state(relay.spool_path)],
        exact=False,
        started=started,
        extra={
            "stop_s": round(seconds, 1),
            "in_flight_at_term": in_flight_at_term,
            "handed_back": handed_back,
            "flushed_at_stop": flushed,
            "turned_away": dict(after_term),
        },
    )
