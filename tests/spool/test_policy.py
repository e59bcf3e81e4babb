"""The drain policy as a pure function: batch size, age, independence, the cycle cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spool import DrainPolicy, KeyBacklog, KeyTake, TakeReason, plan_drain

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
POLICY = DrainPolicy(batch_size=50, max_age=timedelta(seconds=60), max_rows_per_cycle=10_000)


def backlog(key: str, pending: int, age_seconds: float) -> KeyBacklog:
    return KeyBacklog(key, pending, T0 - timedelta(seconds=age_seconds))


def test_nothing_due_below_batch_size_and_age() -> None:
    assert plan_drain([backlog("a", 49, 59.999)], T0, POLICY).takes == ()


def test_a_full_batch_drains_whatever_its_age() -> None:
    plan = plan_drain([backlog("a", 50, 0)], T0, POLICY)
    assert plan.takes == (KeyTake("a", 50, TakeReason.FULL_BATCH),)


def test_a_full_batch_makes_the_key_due_and_its_remainder_rides_along() -> None:
    plan = plan_drain([backlog("a", 149, 10)], T0, POLICY)
    assert plan.takes == (KeyTake("a", 149, TakeReason.FULL_BATCH),)


@pytest.mark.parametrize("pending", [1, 49, 51, 120])
def test_an_aged_key_drains_everything_it_has(pending: int) -> None:
    plan = plan_drain([backlog("a", pending, 60)], T0, POLICY)
    assert plan.takes == (KeyTake("a", pending, TakeReason.MAX_AGE),)


def test_due_is_decided_per_key_not_by_the_total() -> None:
    """49 + 49 young rows of two keys: 98 pending, yet no key has a batch: nothing drains."""
    assert plan_drain([backlog("a", 49, 59), backlog("b", 49, 59)], T0, POLICY).takes == ()


def test_once_a_key_is_due_every_pending_row_rides_along_due_keys_first() -> None:
    plan = plan_drain(
        [backlog("young", 10, 30), backlog("full", 50, 1), backlog("old", 3, 61)], T0, POLICY
    )
    assert plan.takes == (
        KeyTake("old", 3, TakeReason.MAX_AGE),
        KeyTake("full", 50, TakeReason.FULL_BATCH),
        KeyTake("young", 10, TakeReason.RIDE_ALONG),
    )


def test_force_drains_every_key_regardless_of_size_and_age() -> None:
    plan = plan_drain([backlog("a", 1, 0), backlog("b", 7, 5)], T0, POLICY, force=True)
    assert {take.key: take.rows for take in plan.takes} == {"a": 1, "b": 7}
    assert all(take.reason is TakeReason.FORCED for take in plan.takes)


def test_one_cycle_is_capped_and_says_more_is_due_oldest_due_first() -> None:
    policy = DrainPolicy(batch_size=50, max_rows_per_cycle=120)
    plan = plan_drain(
        [backlog("rider", 10, 30), backlog("newer", 100, 70), backlog("oldest", 100, 90)],
        T0,
        policy,
    )
    assert [(take.key, take.rows) for take in plan.takes] == [("oldest", 100), ("newer", 20)]
    assert plan.truncated
    assert plan.rows == 120


def test_riders_fill_what_the_cap_leaves() -> None:
    policy = DrainPolicy(batch_size=50, max_rows_per_cycle=120)
    plan = plan_drain([backlog("rider", 40, 30), backlog("due", 100, 1)], T0, policy)
    assert [(t.key, t.rows, t.reason) for t in plan.takes] == [
        ("due", 100, TakeReason.FULL_BATCH),
        ("rider", 20, TakeReason.RIDE_ALONG),
    ]
    assert plan.truncated


def test_an_uncapped_plan_is_not_truncated() -> None:
    assert not plan_drain([backlog("a", 60, 61)], T0, POLICY).truncated


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"max_age": timedelta(0)},
        {"batch_size": 50, "max_rows_per_cycle": 10},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DrainPolicy(**kwargs)  # type: ignore[arg-type]
