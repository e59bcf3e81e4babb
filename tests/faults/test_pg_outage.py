"""Scenario 2: PostgreSQL stopped under load. Intake and deliveries go on, the spool grows;
when the server is back the backlog drains, nothing lost and nothing twice.

The outage lasts FAULTS_OUTAGE_SECONDS (12 s by default, so `make test` stays short; the issue
asks for at least a minute: a soak run sets FAULTS_OUTAGE_SECONDS=60 or more)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from tests.faults.harness import (
    LoadGenerator,
    add_all_and_even_companies,
    check,
    execution_rows,
    row_count,
    spool_state,
    wait_delivered,
)
from tests.support.pg_cluster import PgCluster
from tests.support.receivers import PostLog, running_receiver
from tests.support.relay_command import run_relay
from tests.support.relay_launcher import RelayProcess
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

OUTAGE = float(os.environ.get("FAULTS_OUTAGE_SECONDS", "12"))
RATE = 100.0


def pending_in_spool(relay: RelayProcess) -> int:
    """`relay spool status` against the live spool, as an operator would run it."""
    status = run_relay(relay.env, "spool", "status", timeout=30)
    assert status.returncode == 0, status.stderr
    found = re.search(r"pending: (\d+) rows", status.stdout)
    assert found is not None, status.stdout
    return int(found.group(1))


def test_postgresql_outage_only_grows_the_spool(
    relays: Callable[..., RelayProcess],
    pg_engine: Engine,
    pg_cluster: PgCluster,
    post_log: PostLog,
) -> None:
    started = time.monotonic()
    with running_receiver(post_log) as (_, url):
        companies = add_all_and_even_companies(pg_engine, "outage", url, 3)
        relay = relays("relay").start()
        load = LoadGenerator(
            [lambda: relay.url],
            companies,
            rate=RATE,
            max_events=int(RATE * (OUTAGE + 8)),
            prefix="outage",
        ).start()
        assert eventually(lambda: row_count(pg_engine) > 50, 20)  # draining normally
        pg_engine.dispose()
        pg_cluster.stop()
        try:
            down_at = time.monotonic()
            accepted_before = load.count()
            posts_before = len(post_log.posts())
            assert eventually(lambda: time.monotonic() - down_at >= OUTAGE, OUTAGE + 1, 0.1)
            accepted_during = load.count() - accepted_before
            posts_during = len(post_log.posts()) - posts_before
            spool_at_restart = pending_in_spool(relay)
        finally:
            pg_cluster.start()
        up_at = time.monotonic()
        backlog_posts = len(post_log.posts())
        assert relay.alive, relay.log_since_start()[-3000:]
        # The backlog: every result of a POST made before the restart reaches PostgreSQL.
        assert eventually(lambda: row_count(pg_engine) >= backlog_posts, 120, 0.1)
        drain_seconds = time.monotonic() - up_at
        assert load.wait_done(60)
        accepted = list(load.accepted.values())
        assert not load.unexpected, load.unexpected[:10]
        assert wait_delivered(post_log, accepted, timeout=60)
        relay.stop_cleanly()
    assert accepted_during > 0.5 * RATE * OUTAGE, "intake stalled during the outage"
    assert posts_during > 0, "deliveries stalled during the outage"
    assert spool_at_restart > 0
    check(
        "2 PostgreSQL outage",
        accepted=accepted,
        posts=post_log.posts(),
        rows=execution_rows(pg_engine),
        spools=[spool_state(relay.spool_path)],
        exact=True,
        started=started,
        extra={
            "outage_s": OUTAGE,
            "accepted_during": accepted_during,
            "posts_during": posts_during,
            "spool_at_restart": spool_at_restart,
            "drain_s": round(drain_seconds, 1),
        },
    )
