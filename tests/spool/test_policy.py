"""The drain policy as a pure function: when a cycle writes, and how much it carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spool import DrainPolicy, KeyBacklog, TakeReason, plan_drain

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
POLICY = DrainPolicy(batch_size=50, max_age=timedelta(seconds=60), max_rows_per_cycle=10_000)


def backlog(key: str, pending: int, age_seconds: float) -> KeyBacklog:
    return KeyBacklog(key, pending, T0 - timedelta(seconds=age_seconds))


def test_nothing_due_below_batch_size_and_age() -> None:
    plan = plan_drain([backlog("a", 49, 59.999)], T0, POLICY)
    assert (plan.rows, plan.reasons, plan.truncated) == (0, {}, False)


def test_a_full_batch_drains_whatever_its_age() -> None:
    plan = plan_drain([backlog("a", 50, 0)], T0, POLICY)
    assert (plan.rows, plan.reasons) == (50, {"a": TakeReason.FULL_BATCH})


def test_a_full_batch_makes_the_key_due_and_its_remainder_rides_along() -> None:
    assert plan_drain([backlog("a", 149, 10)], T0, POLICY).rows == 149


@pytest.mark.parametrize("pending", [1, 49, 51, 120])
def test_an_aged_key_drains_everything_it_has(pending: int) -> None:
    plan = plan_drain([backlog("a", pending, 60)], T0, POLICY)
    assert (plan.rows, plan.reasons) == (pending, {"a": TakeReason.MAX_AGE})


def test_due_is_decided_per_key_not_by_the_total() -> None:
    """49 + 49 young rows of two keys: 98 pending, yet no key has a batch: nothing drains."""
    assert plan_drain([backlog("a", 49, 59), backlog("b", 49, 59)], T0, POLICY).rows == 0


def test_once_a_key_is_due_every_pending_row_rides_along() -> None:
    plan = plan_drain(
        [backlog("young", 10, 30), backlog("full", 50, 1), backlog("old", 3, 61)], T0, POLICY
    )
    assert plan.rows == 63
    assert plan.reasons == {
        "old": TakeReason.MAX_AGE,
        "full": TakeReason.FULL_BATCH,
        "young": TakeReason.RIDE_ALONG,
    }


def test_force_drains_every_key_regardless_of_size_and_age() -> None:
    plan = plan_drain([backlog("a", 1, 0), backlog("b", 7, 5)], T0, POLICY, force=True)
    assert plan.rows == 8
    assert set(plan.reasons.values()) == {TakeReason.FORCED}


def test_one_cycle_is_capped_and_says_more_is_due() -> None:
    policy = DrainPolicy(batch_size=50, max_rows_per_cycle=120)
    plan = plan_drain([backlog("rider", 10, 30), backlog("due", 200, 90)], T0, policy)
    assert (plan.rows, plan.truncated) == (120, True)


def test_an_uncapped_plan_is_not_truncated() -> None:
    assert not plan_drain([backlog("a", 60, 61)], T0, POLICY).truncated


def test_keys_with_nothing_pending_are_ignored() -> None:
    assert plan_drain([backlog("empty", 0, 3600)], T0, POLICY).rows == 0


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
