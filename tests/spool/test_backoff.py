"""Retry delays: exponential from 1 s, capped at 60 s, shortened by bounded jitter."""

from __future__ import annotations

from datetime import timedelta

import pytest

from spool import Backoff


def test_delays_double_from_one_second_up_to_the_cap() -> None:
    backoff = Backoff()
    delays = [backoff.delay(n, random_fraction=0.0).total_seconds() for n in range(1, 10)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_jitter_shortens_by_at_most_its_fraction() -> None:
    backoff = Backoff(jitter=0.2)
    assert backoff.delay(3, random_fraction=0.0) == timedelta(seconds=4)
    assert backoff.delay(3, random_fraction=0.5) == timedelta(seconds=3.6)
    assert backoff.delay(3, random_fraction=0.999).total_seconds() > 3.2


def test_huge_failure_counts_stay_at_the_cap() -> None:
    assert Backoff().delay(10_000, random_fraction=0.0) == timedelta(seconds=60)


@pytest.mark.parametrize("failures", [0, -1])
def test_failures_start_at_one(failures: int) -> None:
    with pytest.raises(ValueError):
        Backoff().delay(failures, random_fraction=0.0)


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(jitter=1.0)
    with pytest.raises(ValueError):
        Backoff(initial=timedelta(seconds=5), maximum=timedelta(seconds=1))
