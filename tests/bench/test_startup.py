"""The start-up benchmark runs against the relay as it is now, and judges by its target.

`make bench` is not part of the suite: two real starts on a tiny registry catch a change to
`relay serve`, its readiness or the registry writes that would break the measurement."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.startup import (
    TARGET_SECONDS,
    THIS_RELAY,
    Sizes,
    Start,
    StartupResults,
    fill_registry,
    run_startup_bench,
)
from relay.db.engine import make_engine
from relay.registry.cache import load_snapshot

LABEL = "this checkout"


def results_of(one: float, many: float) -> StartupResults:
    results = StartupResults(Sizes(many=1_000, repeats=1), {LABEL: THIS_RELAY}, "now", "-")
    results.starts = [Start(LABEL, 1, one, 1.0), Start(LABEL, 1_000, many, 1.0)]
    return results


@pytest.mark.parametrize(
    ("many", "verdict"),
    [(0.8 + TARGET_SECONDS - 0.01, "PASS"), (0.8 + TARGET_SECONDS + 0.01, "MISS")],
)
def test_the_verdict_is_the_difference_against_one_webhook(many: float, verdict: str) -> None:
    _, result, target, said = results_of(0.8, many).table()[-1]
    assert (target, said) == (f"≤ +{TARGET_SECONDS:.0f} s", verdict)
    assert result.startswith(f"+{many - 0.8:.2f} s")


def test_the_registry_holds_that_many_signed_webhooks(tmp_path: Path) -> None:
    folder = fill_registry(tmp_path / "registry", 3)
    engine = make_engine(f"sqlite:///{folder / 'relay.db'}")
    try:
        hooks = load_snapshot(engine).webhooks.values()
    finally:
        engine.dispose()
    assert len(hooks) == 3
    assert all(h.secret is not None and h.secret.startswith("whsec_") for h in hooks)
    assert len({h.secret for h in hooks}) == 3


def test_a_small_run_starts_the_relay_and_times_its_readiness(tmp_path: Path) -> None:
    results = run_startup_bench(Sizes(many=3, repeats=1), {LABEL: THIS_RELAY}, tmp_path / "s")
    assert [(s.relay, s.webhooks) for s in results.starts] == [(LABEL, 1), (LABEL, 3)]
    assert all(s.seconds > 0 and s.cpu_seconds > 0 for s in results.starts)
    assert results.table()[-1][3] in ("PASS", "MISS")
    assert "| this checkout: 3 webhooks against 1: difference (ratio) |" in results.markdown()
    assert not (tmp_path / "s").exists()  # scratch removed
