"""Start-up with many signed webhooks: from spawning `relay serve` to `/readyz` answering 200.

    python -m bench.startup            # 1 and 1,000 signed webhooks, 3 starts of each
    python -m bench.startup --quick    # 1 and 1,000, one start of each
    python -m bench.startup --before /work/main/.venv/bin/relay   # and another checkout's

Both print a table and write bench/out/startup_results.md; `make bench` puts the section
into bench/results.md.

Side by side in one run: the starts alternate between the counts (and the relays, with
`--before`), so a machine whose speed drifts hits each alike. Every start is a real
`relay serve` in a fresh directory holding a copy of a registry filled once per count through
`relay.registry.writes` (one company, each webhook with its own `whsec_` secret) in the
embedded default database, SQLite at `./var/relay.db`; its environment has no `RELAY_*`
variable but the port and the spool path. The time runs from spawning the process to the
first 200 of `/readyz`, polled every 20 ms; the relay is then stopped with SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.report import publish
from bench.service_stage import EVENT, RelayProcess
from relay.db import migrations
from relay.db.engine import make_engine
from relay.registry import writes

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "out" / "startup_results.md"
SCRATCH = HERE / "out" / "startup"
THIS_RELAY = Path(sys.executable).parent / "relay"
TARGET_SECONDS = 3.0  # issue 13: ready with 1,000 signed webhooks within 3 s of with one
READY_TIMEOUT = 600.0  # the quadratic masking took 30 s for 1,000 on an idle machine
POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Sizes:
    many: int  # signed webhooks in the large registry, beside a registry of one
    repeats: int  # starts of each (relay, count)


FULL = Sizes(many=1_000, repeats=3)
QUICK = Sizes(many=1_000, repeats=1)


@dataclass(frozen=True)
class Start:
    relay: str
    webhooks: int
    seconds: float  # spawn -> first 200 of /readyz
    cpu_seconds: float  # CPU of the relay's processes (intake, dispatcher, drain) by then


@dataclass
class StartupResults:
    sizes: Sizes
    relays: dict[str, Path]  # label -> the `relay` script started
    date: str
    load_before: str
    starts: list[Start] = field(default_factory=list)
    load_after: str = ""

    def median(self, relay: str, webhooks: int, cpu: bool = False) -> float:
        runs = [s for s in self.starts if s.relay == relay and s.webhooks == webhooks]
        return statistics.median(s.cpu_seconds if cpu else s.seconds for s in runs)

    def difference(self, relay: str) -> float:
        """How much longer the start with many webhooks takes than with one (medians)."""
        return self.median(relay, self.sizes.many) - self.median(relay, 1)

    def verdicts(self) -> dict[str, bool]:
        return {relay: self.difference(relay) <= TARGET_SECONDS for relay in self.relays}

    def table(self) -> list[tuple[str, str, str, str]]:
        """(measurement, result, target, verdict) rows, for each relay measured."""
        verdict = {k: "PASS" if v else "MISS" for k, v in self.verdicts().items()}
        many, n = self.sizes.many, self.sizes.repeats
        rows = []
        for relay in self.relays:
            one_s, many_s = self.median(relay, 1), self.median(relay, many)
            rows += [
                (
                    f"{relay}: `relay serve` to /readyz 200, 1 signed webhook (median of {n})",
                    f"{one_s:.2f} s (CPU {self.median(relay, 1, cpu=True):.2f} s)",
                    "",
                    "",
                ),
                (
                    f"{relay}: same, {many:,} signed webhooks (median of {n})",
                    f"{many_s:.2f} s (CPU {self.median(relay, many, cpu=True):.2f} s)",
                    "",
                    "",
                ),
                (
                    f"{relay}: {many:,} webhooks against 1: difference (ratio)",
                    f"+{many_s - one_s:.2f} s ({many_s / one_s:.2f}x)",
                    f"≤ +{TARGET_SECONDS:.0f} s",
                    verdict[relay],
                ),
            ]
        return rows

    def markdown(self) -> str:
        """A section for bench/results.md: the table and how it was measured."""
        out = [
            "## Start-up with many signed webhooks (`python -m bench.startup`)",
            "",
            f"Measured {self.date}; load average (1/5/15 min) before {self.load_before}, "
            f"after {self.load_after}.",
            "",
            "| measurement | result | target | verdict |",
            "|---|---|---|---|",
        ]
        out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in self.table()]
        relays = "; ".join(f"{label}: `{path}`" for label, path in self.relays.items())
        out += [
            "",
            f"Relays started: {relays}. Each start: a fresh directory with a copy of the "
            f"registry (1 or {self.sizes.many:,} webhooks of one company, each with its own "
            "`whsec_` secret, written by `relay.registry.writes`) in the embedded default "
            "SQLite database `./var/relay.db`, no `RELAY_*` variable but the port and the "
            "spool path; time from spawning `relay serve` to the first 200 of `/readyz` "
            f"(polled every {POLL_SECONDS * 1000:.0f} ms); CPU is user + system of intake's "
            "process and its children at that moment. Starts alternate between counts and "
            "relays.",
        ]
        return "\n".join(out) + "\n"


def fill_registry(directory: Path, webhooks: int) -> Path:
    """A migrated SQLite database holding `webhooks` signed webhooks; returns its folder."""
    directory.mkdir(mode=0o700, parents=True)
    url = f"sqlite:///{directory / 'relay.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    try:
        company = writes.add_company(engine, "Start-up bench")
        for n in range(webhooks):
            writes.add_webhook(
                engine,
                company_id=company.id,
                url=f"https://hooks.example.com/relay/{n}",
                event=EVENT,
                filters=(),
                secret=writes.new_signing_secret(),
            )
    finally:
        engine.dispose()
    return directory


def time_start(relay_cli: Path, registry: Path, workdir: Path) -> tuple[float, float]:
    """Start `relay serve` on a copy of `registry`: (seconds to /readyz 200, CPU by then)."""
    workdir.mkdir(mode=0o700, parents=True)
    shutil.copytree(registry, workdir / "var")
    started = time.monotonic()
    relay = RelayProcess(workdir, None, {}, relay_cli=relay_cli)
    try:
        with httpx.Client(timeout=5) as client:
            while time.monotonic() - started < READY_TIMEOUT and relay.proc.poll() is None:
                try:
                    if client.get(f"{relay.url}/readyz").status_code == 200:
                        seconds = time.monotonic() - started
                        return seconds, relay.cpu()
                except httpx.TransportError:
                    pass  # not listening yet
                time.sleep(POLL_SECONDS)
    finally:
        relay.stop()
    raise RuntimeError(f"{relay_cli} never answered /readyz 200; log tail:\n{relay.log_tail()}")


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_startup_bench(
    sizes: Sizes, relays: dict[str, Path], scratch: Path = SCRATCH
) -> StartupResults:
    """Fill the two registries once, then start every relay on each, alternating."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    results = StartupResults(
        sizes, relays, datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), _load()
    )
    try:
        _progress(f"start-up bench: filling registries of 1 and {sizes.many:,} webhooks")
        registries = {n: fill_registry(scratch / f"registry-{n}", n) for n in (1, sizes.many)}
        runs = 0
        for repeat in range(sizes.repeats):
            for label, relay_cli in relays.items():
                for webhooks, registry in registries.items():
                    runs += 1
                    workdir = scratch / f"{runs:02d}-{webhooks}"
                    seconds, cpu = time_start(relay_cli, registry, workdir)
                    _progress(
                        f"{label}, {webhooks:,} webhooks, start {repeat + 1}: ready in "
                        f"{seconds:.2f} s"
                    )
                    results.starts.append(Start(label, webhooks, seconds, cpu))
                    shutil.rmtree(workdir, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results.load_after = _load()
    return results


def _relay_script(text: str) -> Path:
    path = Path(text)
    if not os.access(path, os.X_OK):
        raise argparse.ArgumentTypeError(f"not an executable `relay` script: {text!r}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Relay start-up with many signed webhooks.")
    parser.add_argument("--quick", action="store_true", help="one start of each (~30 s)")
    parser.add_argument(
        "--webhooks", type=int, help=f"signed webhooks in the large registry (default {FULL.many})"
    )
    parser.add_argument(
        "--before", type=_relay_script, help="also start this `relay` script (another checkout)"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"markdown file (default {RESULTS})"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.webhooks is not None:
        if args.webhooks < 2:
            parser.error("--webhooks must be at least 2 (the baseline registry holds 1)")
        sizes = Sizes(args.webhooks, sizes.repeats)
    relays = {"this checkout": THIS_RELAY}
    if args.before is not None:
        relays["before"] = args.before
    results = run_startup_bench(sizes, relays)
    publish(results.table(), results.markdown(), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
