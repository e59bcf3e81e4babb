"""Scenario 8: receivers that are slow (30 s), hang, reset connections, answer 500, 429 with
Retry-After, 410 and redirects. Bounded concurrency holds, the healthy webhook is served on
time, retries follow the schedule, and every attempt is logged exactly once."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from tests.faults.harness import (
    Hook,
    LoadGenerator,
    add_company,
    check,
    execution_rows,
    spool_state,
)
from tests.support.receivers import Post, PostLog, ResettingReceiver, running_receiver
from tests.support.relay_launcher import RelayProcess
from tests.support.waiting import eventually

# alone: the healthy webhook must be served within 2 s of the 202, a bound that a CPU shared
# with other pytest workers' relays missed (3.1 s).
pytestmark = [pytest.mark.faults, pytest.mark.alone]

EVENTS = 30
MAX_PER_HOST = 4
MAX_IN_FLIGHT = 12
ATTEMPTS = 3
SCHEDULE = (0.3, 0.6)
TIMEOUT = 1.0
RETRY_AFTER = 1
TENTH = ({"field_path": "tenth", "operator": "equals", "value": True},)
# POSTs each delivery gets: a healthy one 1; 410 is final; the rest are tried ATTEMPTS times.
POSTS_PER_DELIVERY = {"good": 1, "bad-410": 1}


def by_delivery(posts: list[Post]) -> dict[str, list[Post]]:
    grouped: dict[str, list[Post]] = defaultdict(list)
    for post in sorted(posts, key=lambda p: p.received_at):
        grouped[post.webhook_id].append(post)
    return grouped


def gaps(posts: list[Post]) -> list[float]:
    return [b.received_at - a.received_at for a, b in itertools.pairwise(posts)]


def test_misbehaving_receivers_are_bounded_retried_on_schedule_and_logged_once(
    relays: Callable[..., RelayProcess], pg_engine: Engine, post_log: PostLog
) -> None:
    started = time.monotonic()
    with (
        running_receiver(post_log) as (good, good_url),
        running_receiver(post_log) as (bad, bad_url),
        running_receiver(post_log) as (slow, slow_url),
        ResettingReceiver(post_log, "bad-reset") as resetting,
    ):
        hooks = [
            Hook("good", f"{good_url}/good/ok"),
            Hook("bad-500", f"{bad_url}/bad-500/status/500"),
            Hook("bad-429", f"{bad_url}/bad-429/retry-after/{RETRY_AFTER}"),
            Hook("bad-410", f"{bad_url}/bad-410/status/410"),
            Hook("bad-redirect", f"{bad_url}/bad-redirect/redirect"),
            Hook("bad-reset", f"{resetting.url}/reset"),
            Hook("bad-slow", f"{slow_url}/bad-slow/slow/30", TENTH),
            Hook("bad-hang", f"{slow_url}/bad-hang/hang", TENTH),
        ]
        company = add_company(pg_engine, "misbehaving receivers", hooks)
        relay = relays(
            "relay",
            max_per_host=MAX_PER_HOST,
            max_in_flight=MAX_IN_FLIGHT,
            max_attempts=ATTEMPTS,
            retry_schedule_seconds=",".join(map(str, SCHEDULE)),
            http_timeout_seconds=TIMEOUT,
        ).start()
        # The load starts once deliveries can: the healthy webhook's lateness then measures
        # how the others' misbehaviour holds it up, not the dispatcher process's start-up.
        assert eventually(relay.dispatching, 60), relay.log_since_start()[-3000:]
        load = LoadGenerator(
            [lambda: relay.url], [company], rate=10, max_events=EVENTS, prefix="recv", threads=2
        ).start()
        assert load.wait_done(30)
        accepted = list(load.accepted.values())
        assert len(accepted) == EVENTS and not load.unexpected, load.unexpected
        expected_posts = sum(
            POSTS_PER_DELIVERY.get(tag, ATTEMPTS) for a in accepted for tag in a.expected
        )
        assert eventually(lambda: len(post_log.posts()) >= expected_posts, 60, 0.1), (
            len(post_log.posts()),
            expected_posts,
        )
        relay.stop_cleanly()
        max_in_flight = {"good": good.max_in_flight, "bad": bad.max_in_flight}
        max_in_flight["slow"] = slow.max_in_flight
    posts = post_log.posts()
    rows = execution_rows(pg_engine)
    accepted_at = {a.fault_id: a.accepted_at for a in accepted}

    # Bounded concurrency: no host ever had more than its share in flight.
    assert max(max_in_flight.values()) <= MAX_PER_HOST, max_in_flight
    # The healthy webhook is served on time while the others misbehave.
    lateness = [
        p.received_at - accepted_at[p.fault_id]
        for p in posts
        if p.tag == "good" and p.fault_id is not None
    ]
    assert len(lateness) == EVENTS and max(lateness) < 2.0, max(lateness)

    for tag in ("bad-500", "bad-429", "bad-410", "bad-redirect", "bad-reset", "bad-slow"):
        deliveries = by_delivery([p for p in posts if p.tag == tag])
        for attempts in deliveries.values():
            assert len(attempts) == POSTS_PER_DELIVERY.get(tag, ATTEMPTS), (tag, attempts)
        for attempts in deliveries.values():
            for n, gap in enumerate(gaps(attempts)):
                if tag == "bad-429":  # Retry-After wins over the schedule
                    assert RETRY_AFTER - 0.05 <= gap <= RETRY_AFTER + 1.5, (tag, gap)
                else:  # the schedule, minus up to 10% jitter (plus a timeout for slow ones)
                    wait = SCHEDULE[min(n, len(SCHEDULE) - 1)]
                    lag = TIMEOUT if tag == "bad-slow" else 0
                    assert 0.9 * wait - 0.05 <= gap - lag <= wait + 1.5, (tag, n, gap)
    assert all(p.status == 307 for p in posts if p.tag == "bad-redirect")  # not followed
    failed = [r for r in rows if r.status == "failed"]
    assert {r.response_status for r in failed} == {500, 429, 410, 307, None}
    assert all(r.error for r in failed)
    timeouts = [r for r in failed if r.error and r.error.startswith("timeout")]
    assert len(timeouts) == 2 * ATTEMPTS * sum(1 for a in accepted if "bad-hang" in a.expected)
    check(
        "8 misbehaving receivers",
        accepted=accepted,
        posts=posts,
        rows=rows,
        spools=[spool_state(relay.spool_path)],
        exact=True,  # every attempt logged exactly once
        started=started,
        extra={
            "max_in_flight_per_host": max(max_in_flight.values()),
            "late_s": round(max(lateness), 2),
        },
    )
