"""Figures the service benchmark derives from its raw burst measurements."""

from __future__ import annotations

import pytest

from bench.service import QUICK, BurstRun, Machine, ServiceBenchResults


def _burst(logging: bool, cpu_each: float, seconds: float) -> BurstRun:
    return BurstRun(
        logging=logging,
        events=1_000,
        accepted=1_000,
        posts=1_000,
        intake_seconds=seconds,
        posts_seconds=seconds,
        log_seconds=None,
        log_rows=0,
        relay_cpu=cpu_each,
        receiver_cpu=cpu_each,
        postgres_cpu=cpu_each,
        client_cpu=cpu_each,
        settled_cpu_by_process={},
        gauge_ms=None,
    )


def test_busy_cores_is_everything_measured_over_the_burst_median_per_setting() -> None:
    machine = Machine(2, "cpu", 1.0, "3.11", "15", "linux", "0.1")
    results = ServiceBenchResults(quick=True, date="", machine=machine, sizes=QUICK)
    results.bursts = [
        _burst(True, cpu_each=0.25, seconds=1.0),  # 1.0 core
        _burst(True, cpu_each=0.35, seconds=1.0),  # 1.4 cores
        _burst(True, cpu_each=0.75, seconds=2.0),  # 1.5 cores
        _burst(False, cpu_each=0.30, seconds=1.0),  # 1.2 cores
    ]
    assert results.busy_cores(True) == pytest.approx(1.4)
    assert results.busy_cores(False) == pytest.approx(1.2)
    row = next(r for r in results.table() if r[0].strip().startswith("cores busy"))
    assert row[1] == "ON 1.40, OFF 1.20 of 2"
