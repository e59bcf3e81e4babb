"""The search benchmark's small mode runs against the relay as it is now: a few thousand
rows, every query shape finding rows, on the suite's PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from bench.common import Scratch
from bench.search import SearchSizes, run_search
from relay.db import migrations
from tests.support.pg_cluster import PgCluster


def test_the_search_benchmark_times_every_shape_against_its_baseline(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    pg_cluster.create_database("bench_search")
    url = pg_cluster.url("bench_search")
    migrations.upgrade(url)
    scratch = Scratch(tmp_path)
    try:
        result = run_search(
            url, pg_cluster.conninfo("bench_search"), scratch, SearchSizes(6_000, 8, 50, 2)
        )
    finally:
        scratch.cleanup()
    assert result.rows == 6_000
    assert 0 < result.window_rows < result.rows  # the last week of sixty days
    names = [shape.name for shape in result.shapes]
    assert len(names) == 4 and names[0].startswith("by phone")
    for shape in result.shapes:
        assert shape.rows_found > 0, shape.name
        assert len(shape.relay.runs_ms) == len(shape.baseline.runs_ms) >= 8
        assert 0 < shape.relay.p50 <= shape.relay.p99
        assert 0 < shape.baseline.p50 <= shape.baseline.p99
    pages = [shape.name for shape in result.console]
    assert len(pages) == 5 and all(name.startswith("console: ") for name in pages)
    for shape in result.console:
        assert len(shape.relay.runs_ms) == len(shape.baseline.runs_ms) == 2
        assert 0 < shape.relay.p50 <= shape.relay.p99
        if shape.name != "console: dashboard":  # it shows counts, not rows
            assert shape.rows_found > 0, shape.name
