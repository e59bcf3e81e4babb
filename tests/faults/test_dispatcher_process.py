"""`relay serve` runs its dispatcher as a child process: the child is started again when it
dies, it never outlives a SIGKILLed relay, and no delivery is lost or doubled either way."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from tests.faults.harness import (
    LoadGenerator,
    add_all_and_even_companies,
    check,
    execution_rows,
    spool_state,
    wait_delivered,
)
from tests.support import http_calls
from tests.support.receivers import PostLog, running_receiver
from tests.support.relay_launcher import RelayProcess
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults


def dispatcher_pids(relay: RelayProcess) -> list[int]:
    assert relay.process is not None
    try:
        children = psutil.Process(relay.process.pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c.pid for c in children if _is_live_dispatcher(c)]


def _is_live_dispatcher(process: psutil.Process) -> bool:
    try:
        return "dispatcher" in process.cmdline()
    except psutil.Error:  # exited (a zombie until the relay reaps it)
        return False


def successes(relay: RelayProcess) -> float:
    page = http_calls.get(f"{relay.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == "relay_deliveries_total" and sample.labels["outcome"] == "success":
                return sample.value
    return 0.0


def is_gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped by whoever adopted it counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_dispatcher_child_is_restarted_and_dies_with_the_relay(
    relays: Callable[..., RelayProcess], pg_engine: Engine, post_log: PostLog
) -> None:
    started = time.monotonic()
    with running_receiver(post_log) as (_, url):
        companies = add_all_and_even_companies(pg_engine, "child", url, 2)
        relay = relays("relay").start()
        assert eventually(lambda: len(dispatcher_pids(relay)) == 1, 15), relay.log_since_start()
        first_child = dispatcher_pids(relay)[0]

        # The child crashes mid-load: intake keeps answering 202, a new child takes over.
        first = LoadGenerator(
            [lambda: relay.url], companies, rate=100, max_events=300, prefix="child", threads=4
        ).start()
        assert eventually(lambda: first.count() >= 150, 20)
        os.kill(first_child, signal.SIGKILL)
        assert eventually(lambda: dispatcher_pids(relay) not in ([], [first_child]), 15), (
            relay.log_since_start()[-3000:]
        )
        assert "dispatcher process exited unexpectedly" in relay.log_since_start()
        assert first.wait_done(60)
        assert wait_delivered(post_log, first.accepted.values(), timeout=60)
        # Both children's counts reach intake's /metrics. A delivery whose count died with
        # the killed child was POSTed and counted again: at least as many as delivered.
        delivered = len(post_log.delivered())
        assert eventually(lambda: successes(relay) >= delivered, 10), (successes(relay), delivered)

        # The relay itself is SIGKILLed mid-load: its child must not stay behind, POSTing.
        second = LoadGenerator(
            [lambda: relay.url], companies, rate=100, max_events=300, prefix="parent", threads=4
        ).start()
        assert eventually(lambda: second.count() >= 150, 20)
        second_child = dispatcher_pids(relay)[0]
        relay.kill()
        assert eventually(lambda: is_gone(second_child), 10), "dispatcher outlived its relay"
        relay.start()
        assert second.wait_done(60)
        accepted = [*first.accepted.values(), *second.accepted.values()]
        assert not first.unexpected and not second.unexpected, second.unexpected[:10]
        assert wait_delivered(post_log, accepted, timeout=60)
        relay.stop_cleanly()
    check(
        "dispatcher child killed",
        accepted=accepted,
        posts=post_log.posts(),
        rows=execution_rows(pg_engine),
        spools=[spool_state(relay.spool_path)],
        exact=False,
        started=started,
        extra={"dispatcher_starts": relay.log_text().count("dispatcher process started")},
    )


def test_a_dispatcher_told_to_stop_is_not_restarted_and_readyz_says_so(
    relays: Callable[..., RelayProcess],
) -> None:
    """systemd and Ctrl-C signal the whole process group: the child's exit 0 is a stop."""
    relay = relays("relay").start()
    assert eventually(lambda: len(dispatcher_pids(relay)) == 1, 15), relay.log_since_start()
    assert http_calls.get(f"{relay.url}/readyz", timeout=10).status_code == 200
    [child] = dispatcher_pids(relay)
    os.kill(child, signal.SIGTERM)
    assert eventually(lambda: is_gone(child), 15)
    answer = http_calls.get(f"{relay.url}/readyz", timeout=10)
    assert answer.status_code == 503
    assert answer.json()["problems"] == ["the dispatcher process is not running"]
    assert dispatcher_pids(relay) == []
    relay.stop_cleanly()
