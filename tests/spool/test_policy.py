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


def test_only_whole_batches_drain_while_young() -> None:
    plan = plan_drain([backlog("a", 149, 10)], T0, POLICY)
    assert plan.takes == (KeyTake("a", 100, TakeReason.FULL_BATCH),)


@pytest.mark.parametrize("pending", [1, 49, 51, 120])
def test_an_aged_key_drains_everything_it_has(pending: int) -> None:
    plan = plan_drain([backlog("a", pending, 60)], T0, POLICY)
    assert plan.takes == (KeyTake("a", pending, TakeReason.MAX_AGE),)


def test_keys_are_independent() -> None:
    plan = plan_drain(
        [backlog("full", 50, 1), backlog("young", 10, 30), backlog("old", 3, 61)], T0, POLICY
    )
    assert {take.key: take.rows for take in plan.takes} == {"full": 50, "old": 3}


def test_force_drains_every_key_regardless_of_size_and_age() -> None:
    plan = plan_drain([backlog("a", 1, 0), backlog("b", 7, 5)], T0, POLICY, force=True)
    assert {take.key: take.rows for take in plan.takes} == {"a": 1, "b": 7}
    assert all(take.reason is TakeReason.FORCED for take in plan.takes)


def test_one_cycle_is_capped_and_says_more_is_due_oldest_first() -> None:
    policy = DrainPolicy(batch_size=50, max_rows_per_cycle=120)
    plan = plan_drain(
        [backlog("newer", 100, 70), backlog("oldest", 100, 90), backlog("young", 50, 1)],
        T0,
        policy,
    )
    assert [(take.key, take.rows) for take in plan.takes] == [("oldest", 100), ("newer", 20)]
    assert plan.truncated
    assert plan.rows == 120


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
