"""The platform benchmark runs end to end at its smallest: a real `relay serve` on its own
PostgreSQL cluster, the platform in a process of its own, a counting receiver; every event
reaches the receiver exactly once each way (the run raises otherwise)."""

from __future__ import annotations

from pathlib import Path

from bench.platform import Memory, PlatformResults, Round, Sizes, run_platform_bench


def test_a_tiny_run_measures_both_ways_and_the_memory(tmp_path: Path) -> None:
    results = run_platform_bench(Sizes(events=40, rounds=1, companies=4), tmp_path)

    assert [r.way for r in results.rounds] == ["platform", "http"]
    assert all(r.posts == 40 and r.per_second > 0 for r in results.rounds)
    assert {"intake", "platform", "dispatcher"} <= set(results.rounds[0].cpu_by_role)
    assert [m.companies for m in results.memory] == [1, 4]
    assert all(m.uss > 0 and m.rss >= m.uss for m in results.memory)
    assert results.ratio > 0
    assert "| ratio platform / POST /v1/events |" in results.markdown()


def test_the_figures_are_medians_and_differences() -> None:
    results = PlatformResults(Sizes(10, 3, 11), "now", "0")
    for seconds in (1.0, 2.0, 4.0):
        results.rounds.append(Round("platform", 10, 10, seconds, {"platform": seconds / 10}))
        results.rounds.append(Round("http", 10, 10, 1.0, {"intake": 0.2}))
    results.memory = [Memory(1, 100 * 1024, 200 * 1024), Memory(11, 600 * 1024, 700 * 1024)]

    assert results.median_rate("platform") == 5.0
    assert results.ratio == 0.5
    assert results.cpu_ms_per_event("platform") == {"platform": 20.0}
    assert results.per_company("uss") == 50 * 1024
