"""The append benchmark's spool side runs against the spool as it is now.

`make bench` is not part of the suite, so a change to the spool's API (this measurement once
wrapped a private method, whose signature then changed) would only show at the next bench
run. A few records through the real code catch that in seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.appends import spool_append
from bench.data import RowFactory


def test_the_spool_append_benchmark_stores_every_record_and_counts_its_commits(
    tmp_path: Path,
) -> None:
    rows = RowFactory(companies=3, seed=5)
    items = [rows.spool_input(i % 3, datetime(2026, 12, 1, tzinfo=UTC)) for i in range(40)]
    run = spool_append(tmp_path, items, threads=4)
    assert run.records_per_second > 0
    assert run.commits is not None
    assert 1 <= run.commits <= len(items)  # group commit: several appends share a commit
