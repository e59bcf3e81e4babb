"""Scenario 3: the network to PostgreSQL cut under load, through a TCP proxy on loopback:
first it silently stops forwarding (connections stay open, nothing gets through), then it
resets every connection, including ones in the middle of a drain transaction."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

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
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

DB_TIMEOUT = 2.0
BLACKHOLE = 6.0
RESETS = 5


def drain_failures(relay: RelayProcess) -> int:
    return relay.log_since_start().count("drain failed")


def test_network_cut_to_postgresql(
    relays: Callable[..., RelayProcess], pg_engine: Engine, pg_url: str, post_log: PostLog
) -> None:
    started = time.monotonic()
    pause = threading.Event()
    pg_port = make_url(pg_url).port
    assert pg_port is not None
    with TcpProxy(pg_port) as proxy, running_receiver(post_log) as (_, url):
        proxied = make_url(pg_url).set(port=proxy.port).render_as_string(hide_password=False)
        companies = [
            add_company(pg_engine, f"network cut {n}", [Hook("all", f"{url}/all/ok")])
            for n in range(3)
        ]
        relay = relays("relay", database_url=proxied, db_timeout_seconds=DB_TIMEOUT).start()
        load = LoadGenerator(
            [lambda: relay.url], companies, rate=100, max_events=50_000, prefix="cut"
        ).start()
        assert eventually(lambda: row_count(pg_engine) > 50, 20)

        # 1. Silent cut: nothing gets through, nobody hears a thing.
        failures = drain_failures(relay)
        proxy.set_mode("blackhole")
        cut_at = time.monotonic()
        noticed = eventually(lambda: drain_failures(relay) > failures, BLACKHOLE, 0.05)
        noticed_after = time.monotonic() - cut_at
        eventually(lambda: time.monotonic() - cut_at >= BLACKHOLE, BLACKHOLE, 0.1)
        proxy.set_mode("reset")
        proxy.set_mode("forward")

        # 2. Connections reset, several times, each just as a drain transaction begins.
        mid_transaction = 0
        for _ in range(RESETS):
            offset = len(relay.log_since_start())

            def drain_begins(offset: int = offset) -> bool:
                return "batch insert:" in relay.log_since_start()[offset:]

            eventually(drain_begins, 5, 0.005)
            log = relay.log_since_start()
            if log.rfind("batch insert:") > log.rfind("batch insert done"):
                mid_transaction += 1
            proxy.set_mode("reset")
            pause.wait(0.3)  # the cut lasts a moment
            proxy.set_mode("forward")
        load.stop()
        accepted = list(load.accepted.values())
        assert relay.alive
        assert not load.unexpected, load.unexpected[:10]
        assert wait_delivered(post_log, accepted, timeout=60)
        relay.stop_cleanly()
    check(
        "3 network cut to PostgreSQL",
        accepted=accepted,
        posts=post_log.posts(),
        rows=execution_rows(pg_engine),
        spools=[spool_state(relay.spool_path)],
        exact=True,
        started=started,
        extra={
            "blackhole_s": BLACKHOLE,
            "blackhole_noticed_s": round(noticed_after, 1) if noticed else "never",
            "resets": RESETS,
            "resets_mid_transaction": mid_transaction,
            "proxied_connections": proxy.connections,
        },
    )
    assert noticed, f"a silent cut was not noticed within {BLACKHOLE} s (db timeout {DB_TIMEOUT})"
