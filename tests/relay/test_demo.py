"""`relay demo` runs the whole loop locally and reports what the spool saved."""

from __future__ import annotations

from relay.demo.run import run_demo


def test_the_demo_delivers_logs_and_counts_transactions() -> None:
    summary = run_demo(events=60, companies=2)
    assert summary.events == 60
    assert summary.posts >= 60  # every event to the unfiltered webhook, some to the filtered
    assert summary.log_rows == summary.posts  # every attempt logged once
    assert 1 <= summary.transactions < summary.log_rows / 5
    assert "database transactions used" in summary.render()
