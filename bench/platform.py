"""The platform source against `POST /v1/events`, side by side: events per second from one
socket.io connection through to delivered POSTs, and memory per connected company.

    python -m bench.platform            # 3 rounds of 5,000 events each way; 500 companies
    python -m bench.platform --quick    # 1 round of 500; 50 companies

Prints a table and writes bench/out/platform_results.md; `make bench` puts the section into
bench/results.md.

Throughput: one `relay serve` (intake, dispatcher, drain and platform processes) on a
throwaway PostgreSQL cluster (fsync on), one company with a platform token and one webhook
to a counting receiver (its own process). Rounds alternate on the same relay: the platform
(`bench/platform_emitter.py`, its own process) pushes N realistic call events, each with its
own `callHistory._id`, back to back on the company's one connection, timed from the first
emit to the last POST the receiver saw; then the same N events through `POST /v1/events` on
16 kept-alive connections, timed from the first request to the last POST. The receiver must
count exactly N POSTs each round. CPU seconds of each relay process are read per round.

Memory: `relay platform`'s USS and RSS with 1 company connected and with C connected (two
fresh starts of the relay on the same database; the emitter counts the connections), and
the difference per added company.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bench.report import publish
from bench.service_http import closed_loop
from bench.service_stage import (
    SAMPLE,
    Database,
    ReceiverProcess,
    RelayProcess,
)
from relay.db.engine import make_engine
from relay.registry import writes

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "out" / "platform_results.md"
SCRATCH = HERE / "out" / "platform"
EVENT = "call-history-was-created"
HTTP_CONNECTIONS = 16
ROUND_TIMEOUT = 600.0
CONNECT_TIMEOUT = 120.0
RELAY_SETTINGS = {"RELAY_LOG_FORMAT": "text", "RELAY_MAX_IN_FLIGHT": "64"}


@dataclass(frozen=True)
class Sizes:
    events: int  # per round and way
    rounds: int  # of each way, alternating
    companies: int  # connected at once, for the memory figure


FULL = Sizes(events=5_000, rounds=3, companies=500)
QUICK = Sizes(events=500, rounds=1, companies=50)


@dataclass(frozen=True)
class Round:
    way: str  # "platform" or "http"
    events: int
    posts: int
    seconds: float  # first event sent -> last POST received
    cpu_by_role: dict[str, float]  # CPU seconds of each relay process during the round

    @property
    def per_second(self) -> float:
        return self.posts / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Memory:
    companies: int
    uss: int  # bytes of the platform process
    rss: int


@dataclass
class PlatformResults:
    sizes: Sizes
    date: str
    load_before: str
    rounds: list[Round] = field(default_factory=list)
    memory: list[Memory] = field(default_factory=list)
    load_after: str = ""

    def median_rate(self, way: str) -> float:
        return statistics.median(r.per_second for r in self.rounds if r.way == way)

    @property
    def ratio(self) -> float:
        return self.median_rate("platform") / self.median_rate("http")

    def cpu_ms_per_event(self, way: str) -> dict[str, float]:
        """Median CPU milliseconds per event of each relay process, over the way's rounds."""
        rounds = [r for r in self.rounds if r.way == way]
        roles = sorted({role for r in rounds for role in r.cpu_by_role})
        return {
            role: statistics.median(1000 * r.cpu_by_role.get(role, 0.0) / r.events for r in rounds)
            for role in roles
        }

    def per_company(self, measure: str) -> float:
        """Bytes of `measure` (uss, rss) per connected company beyond the first."""
        one, many = self.memory[0], self.memory[-1]
        added = many.companies - one.companies
        return (getattr(many, measure) - getattr(one, measure)) / added

    def rows(self) -> list[tuple[str, str, str, str]]:
        rows = [
            (
                f"events/s, one socket.io connection -> POSTs ({self.sizes.events} events)",
                f"{self.median_rate('platform'):,.0f}/s",
                "-",
                "info",
            ),
            (
                f"events/s, POST /v1/events x{HTTP_CONNECTIONS} -> POSTs",
                f"{self.median_rate('http'):,.0f}/s",
                "-",
                "info",
            ),
            ("ratio platform / POST /v1/events", f"{self.ratio:.2f}x", "-", "info"),
        ]
        if len(self.memory) == 2:
            rows += [
                (
                    f"platform process USS with 1 / {self.memory[-1].companies} companies",
                    f"{self.memory[0].uss / 2**20:.1f} / {self.memory[-1].uss / 2**20:.1f} MiB",
                    "-",
                    "info",
                ),
                (
                    "memory per connected company (USS / RSS)",
                    f"{self.per_company('uss') / 1024:.0f} / "
                    f"{self.per_company('rss') / 1024:.0f} KiB",
                    "-",
                    "info",
                ),
            ]
        return rows

    def markdown(self) -> str:
        lines = [
            "## The platform source (`python -m bench.platform`)",
            "",
            f"Run {self.date}; load average before {self.load_before}, after "
            f"{self.load_after}. {self.sizes.rounds} round(s) of {self.sizes.events} events "
            "each way, alternating, on one `relay serve` with PostgreSQL (fsync on).",
            "",
            "| measurement | value |",
            "|---|---|",
            *(f"| {name} | {value} |" for name, value, _target, _verdict in self.rows()),
            "",
            "| round | way | events/s | seconds | CPU ms per event by process |",
            "|---|---|---|---|---|",
        ]
        for n, r in enumerate(self.rounds, 1):
            cpu = ", ".join(
                f"{role} {1000 * s / r.events:.2f}" for role, s in sorted(r.cpu_by_role.items())
            )
            lines.append(f"| {n} | {r.way} | {r.per_second:,.0f} | {r.seconds:.2f} | {cpu} |")
        return "\n".join(lines) + "\n"


class Emitter:
    """`python -m bench.platform_emitter` and its command line protocol."""

    def __init__(self, tokens: Sequence[str], workdir: Path) -> None:
        token_file = workdir / "tokens.txt"
        token_file.write_text("\n".join(tokens))
        self._log = (workdir / "emitter.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.platform_emitter", "--tokens", str(token_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=HERE.parent,
        )
        self.url = str(self._read()["url"])

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        return self._read()

    def connected(self) -> int:
        return int(self.ask("connected")["connected"])

    def wait_connected(self, expected: int) -> None:
        give_up = time.monotonic() + CONNECT_TIMEOUT
        while self.connected() < expected:
            if time.monotonic() > give_up:
                raise RuntimeError(f"only {self.connected()} of {expected} companies connected")
            time.sleep(0.2)

    def _read(self) -> dict[str, Any]:
        stream: IO[bytes] | None = self.proc.stdout
        assert stream is not None
        line = stream.readline()
        if not line:
            raise RuntimeError("the emitter stopped; see its log")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(str(answer["error"]))
        return answer

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def call_documents(count: int, tag: str) -> list[dict[str, Any]]:
    """`count` realistic call events, each with its own `callHistory._id`."""
    sample: dict[str, Any] = json.loads(SAMPLE.read_text())
    documents = []
    for n in range(count):
        document = copy.deepcopy(sample)
        document["callHistory"]["_id"] = f"{tag}-{n:07d}"
        documents.append(document)
    return documents


def platform_memory(relay: RelayProcess) -> tuple[int, int]:
    """USS and RSS of the relay's `relay platform` process."""
    for child in relay.process.children(recursive=True):
        if "platform" in child.cmdline():
            info = child.memory_full_info()
            return int(info.uss), int(info.rss)
    raise RuntimeError("no platform process")


def _relay(workdir: Path, database: Database, emitter: Emitter) -> RelayProcess:
    settings = {**RELAY_SETTINGS, "RELAY_PLATFORM_CLUSTER1_URL": emitter.url}
    return RelayProcess(workdir, database.url, settings)


async def _rounds(
    results: PlatformResults,
    relay: RelayProcess,
    receiver: ReceiverProcess,
    emitter: Emitter,
    company: uuid.UUID,
    token: str,
    workdir: Path,
) -> None:
    sizes = results.sizes
    for n in range(sizes.rounds):
        for way in ("platform", "http"):
            documents = call_documents(sizes.events, f"{way}{n}")
            await receiver.reset()
            cpu_before = relay.cpu_by_role()
            deadline = time.monotonic() + ROUND_TIMEOUT
            if way == "platform":
                burst = workdir / "burst.jsonl"
                burst.write_text("\n".join(json.dumps(d) for d in documents))
                answer = await asyncio.to_thread(emitter.ask, f"burst {token} {burst}")
                if answer["emitted"] != sizes.events:
                    raise RuntimeError(f"emitted {answer['emitted']} of {sizes.events}")
                started = float(answer["started"])
            else:
                bodies = [
                    json.dumps(
                        {"company_id": str(company), "event": EVENT, "id": f"h{n}-{i}", "data": d}
                    ).encode()
                    for i, d in enumerate(documents)
                ]
                timed = await closed_loop(
                    relay.port, "/v1/events", bodies, HTTP_CONNECTIONS, deadline
                )
                if timed.ok != sizes.events:
                    raise RuntimeError(f"intake accepted {timed.ok} of {sizes.events}")
                started = timed.first_sent
            posts, _first, last = await receiver.wait_for_posts(sizes.events, deadline)
            await asyncio.sleep(0.5)  # a duplicate would come now
            posts, _first, last = await receiver.stats()
            if posts != sizes.events or last is None:
                raise RuntimeError(f"{way} round {n}: {posts} POSTs for {sizes.events} events")
            cpu_after = relay.cpu_by_role()
            cpu = {role: cpu_after[role] - cpu_before.get(role, 0.0) for role in cpu_after}
            results.rounds.append(Round(way, sizes.events, posts, last - started, cpu))
            print(f"  {way} round {n + 1}: {results.rounds[-1].per_second:,.0f} events/s")


def _register(
    database: Database, count: int, port: int, offset: int = 0
) -> list[tuple[uuid.UUID, str]]:
    engine = make_engine(database.url)
    made = []
    try:
        for n in range(offset, offset + count):
            token = f"bench-token-{n:05d}-{uuid.uuid4().hex}"
            company = writes.add_company(engine, f"Platform company {n}", platform_token=token)
            writes.add_webhook(
                engine,
                company_id=company.id,
                url=f"http://127.0.0.1:{port}/hooks/{company.id}",
                event=EVENT,
                filters=(),
                secret=None,
            )
            made.append((company.id, token))
    finally:
        engine.dispose()
    return made


def run_platform_bench(sizes: Sizes, base: Path = SCRATCH) -> PlatformResults:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 2 sockets per company
    results = PlatformResults(sizes, datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), _load())
    base.mkdir(parents=True, exist_ok=True)
    database = Database(base / "pg")
    receiver = ReceiverProcess(1, base / "receiver.log")
    try:
        port = receiver.ports[0]
        companies = _register(database, 1, port)
        more = _register(database, sizes.companies - 1, port, offset=1)
        # The extra companies have no token until the memory phase: one connection first.
        engine = make_engine(database.url)
        try:
            for company_id, _token in more:
                writes.edit_company(engine, company_id, platform=writes.PlatformChange(remove=True))
        finally:
            engine.dispose()
        emitter = Emitter([t for _c, t in companies + more], base)
        try:
            relay = _relay(base / "relay-throughput", database, emitter)
            try:
                asyncio.run(relay.wait_ready())
                emitter.wait_connected(1)
                results.memory.append(Memory(1, *platform_memory(relay)))
                company, token = companies[0]
                asyncio.run(_rounds(results, relay, receiver, emitter, company, token, base))
            finally:
                relay.stop()
            engine = make_engine(database.url)
            try:
                for company_id, token in more:
                    writes.edit_company(
                        engine, company_id, platform=writes.PlatformChange(token=token)
                    )
            finally:
                engine.dispose()
            relay = _relay(base / "relay-memory", database, emitter)
            try:
                asyncio.run(relay.wait_ready())
                emitter.wait_connected(sizes.companies)
                time.sleep(2)  # settle: the last connections' buffers
                results.memory.append(Memory(sizes.companies, *platform_memory(relay)))
            finally:
                relay.stop()
        finally:
            emitter.stop()
    finally:
        receiver.stop()
        database.close()
    results.load_after = _load()
    return results


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 round of 500; 50 companies")
    args = parser.parse_args(argv)
    results = run_platform_bench(QUICK if args.quick else FULL)
    publish(results.rows(), results.markdown(), RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
