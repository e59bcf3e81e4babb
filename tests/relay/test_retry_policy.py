"""When a failed delivery is tried again: the schedule, jitter, which answers are final, and
`Retry-After` (pure functions, plus a real relay for what a receiver's header does)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import Engine

from relay.delivery.retry import (
    MAX_RETRY_AFTER,
    RetryPolicy,
    is_retryable,
    is_success,
    parse_retry_after,
)
from relay.settings import RelaySettings
from spool import ScheduledItem
from tests.relay.conftest import add_company, add_webhook
from tests.support.receivers import RunningReceiver
from tests.support.relay_launcher import InProcessRelay
from tests.support.waiting import eventually

NOW = datetime(2026, 11, 24, 17, 6, 15, tzinfo=UTC)
DEFAULT_WAITS = [
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
]
POLICY = RetryPolicy()


def next_at(
    attempt: int,
    status: int | None = 503,
    *,
    retry_after: timedelta | None = None,
    fraction: float = 0.0,
    policy: RetryPolicy = POLICY,
) -> datetime | None:
    return policy.next_attempt_at(
        attempt=attempt,
        status=status,
        retry_after=retry_after,
        now=NOW,
        random_fraction=fraction,
    )


# -- schedule -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("attempt", "wait"), list(enumerate(DEFAULT_WAITS, start=1)))
def test_the_default_schedule_without_jitter(attempt: int, wait: timedelta) -> None:
    assert next_at(attempt, fraction=0.0) == NOW + wait


def test_the_sixth_attempt_is_the_last() -> None:
    assert POLICY.max_attempts == 6
    assert next_at(5) is not None
    assert next_at(6) is None
    assert next_at(7) is None


@pytest.mark.parametrize("attempt", range(1, 6))
@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.999999, 1.0])
def test_jitter_only_shortens_the_wait_by_at_most_10_percent(attempt: int, fraction: float) -> None:
    wait = DEFAULT_WAITS[attempt - 1]
    when = next_at(attempt, fraction=fraction)
    assert when is not None
    assert NOW + wait * 0.9 <= when <= NOW + wait
    assert when == NOW + wait * (1 - 0.1 * fraction)


def test_jitter_spreads_retries_of_the_same_attempt() -> None:
    times = {next_at(1, fraction=f / 10) for f in range(10)}
    assert len(times) == 10


def test_past_the_end_of_the_schedule_the_last_wait_repeats() -> None:
    policy = RetryPolicy(schedule=(timedelta(seconds=1), timedelta(seconds=2)), max_attempts=5)
    waits = [next_at(n, policy=policy) for n in range(1, 6)]
    assert waits == [
        NOW + timedelta(seconds=1),
        NOW + timedelta(seconds=2),
        NOW + timedelta(seconds=2),
        NOW + timedelta(seconds=2),
        None,
    ]


def test_a_single_attempt_policy_never_retries() -> None:
    assert next_at(1, policy=RetryPolicy(max_attempts=1)) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"schedule": ()}, {"max_attempts": 0}, {"jitter": 1.0}, {"jitter": -0.1}],
    ids=repr,
)
def test_a_nonsensical_policy_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_settings_build_the_policy_from_the_environment_knobs() -> None:
    settings = RelaySettings(retry_schedule_seconds="1,2.5,60", max_attempts=4)
    policy = RetryPolicy.from_settings(settings)
    assert policy.schedule == (
        timedelta(seconds=1),
        timedelta(seconds=2.5),
        timedelta(seconds=60),
    )
    assert policy.max_attempts == 4
    assert RetryPolicy.from_settings(RelaySettings()) == RetryPolicy()


@pytest.mark.parametrize("schedule", ["", "5,,30", "five", "5,-1", "0"])
def test_a_bad_schedule_setting_is_refused(schedule: str) -> None:
    with pytest.raises(ValueError, match="retry_schedule_seconds"):
        RelaySettings(retry_schedule_seconds=schedule)


# -- which answers are retried ------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 451, 499])
def test_gone_and_other_4xx_are_final(status: int) -> None:
    assert not is_retryable(status)
    assert next_at(1, status) is None
    assert next_at(1, status, retry_after=timedelta(seconds=10)) is None


@pytest.mark.parametrize("status", [None, 408, 429, 500, 502, 503, 504, 599])
def test_no_answer_timeouts_throttling_and_5xx_are_retried(status: int | None) -> None:
    assert is_retryable(status)
    assert next_at(1, status) == NOW + timedelta(seconds=5)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_success_and_nothing_to_retry(status: int) -> None:
    assert is_success(status)
    assert not is_retryable(status)


@pytest.mark.parametrize("status", [None, 100, 199, 300, 301, 304, 400, 500])
def test_only_2xx_is_success(status: int | None) -> None:
    assert not is_success(status)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed_but_retried(status: int) -> None:
    assert is_retryable(status)


# -- Retry-After --------------------------------------------------------------------------------


def test_retry_after_replaces_the_schedule_and_has_no_jitter() -> None:
    assert next_at(1, 429, retry_after=timedelta(seconds=90), fraction=1.0) == NOW + timedelta(
        seconds=90
    )
    assert next_at(4, 503, retry_after=timedelta(seconds=3)) == NOW + timedelta(seconds=3)


def test_retry_after_is_capped_at_24_hours_and_never_in_the_past() -> None:
    assert timedelta(hours=24) == MAX_RETRY_AFTER
    assert next_at(1, 503, retry_after=timedelta(days=400)) == NOW + timedelta(hours=24)
    assert next_at(1, 503, retry_after=timedelta(seconds=-30)) == NOW
    assert next_at(1, 503, retry_after=timedelta(0)) == NOW


def test_retry_after_does_not_extend_the_attempt_limit() -> None:
    assert next_at(6, 429, retry_after=timedelta(seconds=1)) is None


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("0", timedelta(0)),
        ("120", timedelta(seconds=120)),
        (" 7 ", timedelta(seconds=7)),
        ("007", timedelta(seconds=7)),
        ("86400", timedelta(hours=24)),
        ("86401", timedelta(hours=24)),
        ("9" * 40, timedelta(hours=24)),
        ("9" * 4300, timedelta(hours=24)),
    ],
    ids=lambda v: v[:12] if isinstance(v, str) else None,
)
def test_retry_after_in_seconds(header: str, wait: timedelta) -> None:
    assert parse_retry_after(header, NOW) == wait


def test_retry_after_as_an_http_date() -> None:
    in_two_minutes = format_datetime(NOW + timedelta(minutes=2), usegmt=True)
    assert in_two_minutes.endswith("GMT")
    assert parse_retry_after(in_two_minutes, NOW) == timedelta(minutes=2)
    rfc850 = (NOW + timedelta(seconds=30)).strftime("%A, %d-%b-%y %H:%M:%S GMT")
    asctime = (NOW + timedelta(seconds=45)).strftime("%a %b %d %H:%M:%S %Y")
    assert parse_retry_after(rfc850, NOW) == timedelta(seconds=30)
    assert parse_retry_after(asctime, NOW) == timedelta(seconds=45)  # no zone: UTC


def test_an_http_date_far_away_or_in_the_past_is_bounded_by_the_policy() -> None:
    far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", NOW)
    past = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW)
    assert far is not None and past is not None
    assert next_at(1, 503, retry_after=far) == NOW + timedelta(hours=24)
    assert next_at(1, 503, retry_after=past) == NOW


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "soon",
        "1.5",
        "-5",
        "+5",
        "5s",
        "0x10",
        "1e3",
        "Mon, 32 Dec 2026 00:00:00 GMT",
        "Mon, 01 Jan 2026 25:00:00 GMT",
        "Mon, 01 Jan 2026 00:00:00 +9999",
        "Mon, 01 Jan 99999 00:00:00 GMT",
        "Tue, 24 Nov 2026",
        "\x00",
    ],
    ids=repr,
)
def test_garbage_retry_after_is_ignored(header: str | None) -> None:
    assert parse_retry_after(header, NOW) is None


@pytest.mark.parametrize(
    ("header", "wait"),
    [("9" * 4301, MAX_RETRY_AFTER), ("9" * 20_000, MAX_RETRY_AFTER), ("²", None), ("1²", None)],
    ids=["4301-digits", "20000-digits", "superscript", "digit-superscript"],
)
def test_huge_or_odd_digit_retry_after_never_raises(header: str, wait: timedelta | None) -> None:
    # int() refuses more than 4300 digits, and str.isdigit() is true for '²', which int() refuses
    assert parse_retry_after(header, NOW) == wait


# -- what a receiver's Retry-After does to a real relay ----------------------------------------


def _attempt_times(receiver: RunningReceiver, path: str, count: int, timeout: float) -> list[float]:
    """Monotonic times at which the receiver was seen to have got 1, 2, ... POSTs on `path`."""
    seen: list[float] = []
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        got = len(receiver.receiver.on(path))
        while len(seen) < min(got, count):
            seen.append(time.monotonic())
        pause.wait(0.01)
    return seen


def test_a_receivers_retry_after_is_honoured_end_to_end(
    start_relay: Callable[..., InProcessRelay], pg_engine: Engine, receiver: RunningReceiver
) -> None:
    company = add_company(pg_engine)
    add_webhook(pg_engine, company, f"{receiver.url}/retry-after/2")
    relay = start_relay(max_attempts=2)

    assert relay.post(company).status_code == 202
    times = _attempt_times(receiver, "/retry-after/2", 2, timeout=10)

    assert len(times) == 2
    gap = times[1] - times[0]
    assert 1.8 <= gap < 4.5, gap  # the schedule's first wait would be 4.5 to 5 s
    first, second = receiver.receiver.on("/retry-after/2")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body


@pytest.mark.parametrize("header", ["9" * 4301, "%C2%B2"], ids=["4301-digits", "superscript-2"])
def test_an_unreadable_retry_after_from_a_receiver_does_not_cause_a_retry_storm(
    start_relay: Callable[..., InProcessRelay],
    pg_engine: Engine,
    receiver: RunningReceiver,
    header: str,
) -> None:
    company = add_company(pg_engine)
    add_webhook(pg_engine, company, f"{receiver.url}/retry-after/{header}")
    relay = start_relay(max_attempts=2)

    posted_at = datetime.now(UTC)
    assert relay.post(company, event_id=str(uuid.uuid4())).status_code == 202
    inbox = relay.service.inbox.queue

    def rescheduled() -> ScheduledItem | None:
        [item] = inbox.due(posted_at + timedelta(days=2), 1)
        return item if item.attempts == 1 else None

    assert eventually(lambda: rescheduled() is not None)
    retry = rescheduled()
    assert retry is not None
    # once, not in a tight loop: the header is capped (24 h) or ignored (the schedule's first
    # wait, 4.5 to 5 s, applies); either way the next attempt is seconds away, not now
    assert retry.due_at - posted_at >= timedelta(seconds=4.5)
    assert len(receiver.receiver.on("/retry-after/")) == 1
