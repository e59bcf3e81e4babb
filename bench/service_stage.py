"""The stage of the service benchmark: PostgreSQL, the receiver, relay processes, event bodies.

Everything runs on 127.0.0.1. The relay runs as `relay serve` in its own process (as in
production, and so its CPU is not shared with the load generator's interpreter); the receiver
runs in a third process; PostgreSQL is a throwaway cluster with fsync on.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import psutil
import psycopg

from bench.service_http import RawConnection, RawHttpError
from relay.accounts import store
from relay.db import migrations
from relay.db.engine import make_engine
from relay.delivery.signing import sign
from relay.inbox.deliveries import Delivery, deliveries_for
from relay.inbox.store import EventInbox
from relay.intake.body import parse_event
from relay.registry import writes
from relay.registry.cache import load_snapshot
from spool import SpoolDatabase, utc_now
from tests.support.pg_cluster import PgCluster
from tests.support.ports import reserved_port

EVENT = "call-history-was-created"
SAMPLE = Path(__file__).resolve().parents[1] / "relay" / "samples" / "call-history-was-created.json"
DATABASE = "relay_service_bench"
START_TIMEOUT = 60.0
CHILD_ROLES = (
    "dispatcher",
    "drain",
    "platform",
)  # the `relay` commands `relay serve` runs as children
STOP_TIMEOUT = 60.0


def cpu_seconds(process: psutil.Process | None) -> float:
    """User + system CPU of a process (all its threads); 0 once it is gone."""
    if process is None:
        return 0.0
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


class OtherLoad:
    """CPU used by processes outside this benchmark while it ran: a busy machine shows.

    Processes alive at both samples count their CPU delta; processes started in between
    count all their CPU; processes that came and went in between are missed (a lower bound).
    """

    def __init__(self, ours: Callable[[], set[int]]) -> None:
        self._ours = ours
        self.started = time.monotonic()
        self._before = self._sample()

    @staticmethod
    def _sample() -> dict[int, tuple[float, float]]:
        seen = {}
        for proc in psutil.process_iter(["create_time", "cpu_times"]):
            times = proc.info["cpu_times"]
            if times is not None:
                seen[proc.pid] = (proc.info["create_time"], times.user + times.system)
        return seen

    def cpu_seconds(self) -> tuple[float, float]:
        """(CPU seconds used by other processes, wall seconds elapsed)."""
        ours = self._ours() | {os.getpid()}
        ours |= {child.pid for child in psutil.Process().children(recursive=True)}
        total = 0.0
        for pid, (created, cpu) in self._sample().items():
            if pid in ours:
                continue
            earlier = self._before.get(pid)
            if earlier is None:
                total += cpu
            elif earlier[0] == created:
                total += cpu - earlier[1]
        return total, time.monotonic() - self.started


# -- event bodies -----------------------------------------------------------------------------


class EventFactory:
    """Realistic call-history events with varied values, spread evenly over the companies."""

    def __init__(self, company_ids: Sequence[uuid.UUID], seed: int = 11) -> None:
        self.company_ids = list(company_ids)
        self.sample: dict[str, Any] = json.loads(SAMPLE.read_text())
        self.rng = random.Random(seed)

    def bodies(self, count: int) -> list[bytes]:
        """`count` intake bodies, round-robin over the companies, each with a caller id."""
        return [self._body(self.company_ids[i % len(self.company_ids)]) for i in range(count)]

    def _body(self, company_id: uuid.UUID) -> bytes:
        rng = self.rng
        data = copy.deepcopy(self.sample)
        call = data["callHistory"]
        call["number"] = f"55{rng.randint(11, 99)}9{rng.randint(10_000_000, 99_999_999)}"
        call["_id"] = f"{rng.getrandbits(96):024x}"
        call["telephony_id"] = str(uuid.UUID(int=rng.getrandbits(128)))
        call["speaking_time"] = rng.randint(0, 900)
        call["billed_time"] = call["speaking_time"] + rng.randint(0, 120)
        call["agent"]["id"] = rng.randint(10_000, 99_999)
        call["mailing_data"]["phone"] = call["number"]
        call["qualification"]["conversion"] = rng.random() < 0.3
        event = {
            "company_id": str(company_id),
            "event": EVENT,
            "id": f"call-{rng.getrandbits(64):016x}",
            "data": data,
        }
        return json.dumps(event, separators=(",", ":")).encode()


# -- the receiver process ---------------------------------------------------------------------


class ReceiverProcess:
    """`python -m bench.service_receiver` on several ports (one per customer host)."""

    def __init__(self, ports: int, log_path: Path) -> None:
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.service_receiver", "--ports", str(ports)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert self.proc.stdout is not None
        line = _read_line(self.proc.stdout, START_TIMEOUT)
        self.ports: list[int] = json.loads(line)["ports"]
        self.process = psutil.Process(self.proc.pid)

    async def stats(self) -> tuple[int, float | None, float | None]:
        """(POSTs, monotonic time of the first, of the last) since the last reset."""
        conn = await RawConnection.open(self.ports[0])
        try:
            _, body = await conn.get("/_stats")
        finally:
            await conn.close()
        fields = json.loads(body)
        return int(fields["posts"]), fields["first"], fields["last"]

    async def reset(self) -> None:
        conn = await RawConnection.open(self.ports[0])
        try:
            await conn.get("/_reset")
        finally:
            await conn.close()

    async def wait_for_posts(
        self, expected: int, deadline: float, poll: float = 0.02
    ) -> tuple[int, float | None, float | None]:
        """Poll until `expected` POSTs arrived or the deadline passed; return the stats."""
        while True:
            posts, first, last = await self.stats()
            if posts >= expected or time.monotonic() >= deadline:
                return posts, first, last
            await asyncio.sleep(poll)

    def stop(self) -> None:
        _terminate(self.proc, 10)
        self._log.close()


def _read_line(stream: IO[bytes], timeout: float) -> str:
    """One line from a child's stdout, bounded in time (the child may fail to start)."""
    os.set_blocking(stream.fileno(), False)
    give_up = time.monotonic() + timeout
    buffer = b""
    while time.monotonic() < give_up:
        chunk = stream.read()
        if chunk:
            buffer += chunk
            if b"\n" in buffer:
                return buffer.split(b"\n", 1)[0].decode()
        time.sleep(0.02)
    raise RuntimeError("the receiver did not report its ports in time")


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


# -- PostgreSQL and the registry --------------------------------------------------------------


@dataclass
class Registered:
    """Companies, one webhook each, each on its own receiver port (its own host)."""

    company_ids: list[uuid.UUID]
    secrets: dict[str, str]  # webhook URL -> signing secret


class Database:
    """A throwaway PostgreSQL cluster (fsync on) with the relay's schema and registry."""

    def __init__(self, base_dir: Path) -> None:
        base_dir.mkdir(parents=True, exist_ok=True)
        self.cluster = PgCluster(base_dir, fsync=True)
        self.cluster.__enter__()
        try:
            self.cluster.create_database(DATABASE)
            self.url = self.cluster.url(DATABASE)
            migrations.upgrade(self.url)
            self.conn = psycopg.connect(self.cluster.conninfo(DATABASE), autocommit=True)
            row = self.conn.execute("SHOW server_version").fetchone()
            self.version = str(row[0]) if row else "?"
        except BaseException:
            self.cluster.destroy()
            raise

    def register(self, receiver_ports: Sequence[int]) -> Registered:
        engine = make_engine(self.url)
        ids, secrets = [], {}
        try:
            for n, port in enumerate(receiver_ports):
                company = writes.add_company(engine, f"Bench company {n + 1}")
                url = f"http://127.0.0.1:{port}/hooks/{company.id}"
                secret = writes.new_signing_secret()
                writes.add_webhook(
                    engine, company_id=company.id, url=url, event=EVENT, filters=(), secret=secret
                )
                ids.append(company.id)
                secrets[url] = secret
        finally:
            engine.dispose()
        return Registered(ids, secrets)

    def api_token(self) -> str:
        """An admin's API token (a new user each call), as `relay tokens create` makes one."""
        engine = make_engine(self.url)
        try:
            now = utc_now()
            name = f"bench-{uuid.uuid4().hex[:8]}"
            password = secrets.token_urlsafe(16)
            store.add_user(engine, name, password, role="admin", companies_allowed=None, now=now)
            _row, token = store.create_token(engine, name, scope="admin", company_id=None, now=now)
        finally:
            engine.dispose()
        return token

    def log_rows(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM webhook_executions").fetchone()
        return int(row[0]) if row else 0

    def clear_log(self) -> None:
        self.conn.execute("TRUNCATE webhook_executions")

    async def wait_for_rows(self, expected: int, deadline: float, poll: float = 0.05) -> float:
        """Monotonic time at which `expected` log rows were seen (inf if never)."""
        while time.monotonic() < deadline:
            if self.log_rows() >= expected:
                return time.monotonic()
            await asyncio.sleep(poll)
        return float("inf")

    def _postmaster(self) -> psutil.Process | None:
        try:
            pid = int((self.cluster.data_dir / "postmaster.pid").read_text().split()[0])
            return psutil.Process(pid)
        except (OSError, ValueError, psutil.Error):
            return None

    def server_cpu_seconds(self) -> float:
        """CPU of the postmaster and its children (backends come and go: approximate)."""
        main = self._postmaster()
        if main is None:
            return 0.0
        try:
            return cpu_seconds(main) + sum(cpu_seconds(c) for c in main.children())
        except psutil.Error:
            return 0.0

    def server_pids(self) -> set[int]:
        main = self._postmaster()
        if main is None:
            return set()
        try:
            return {main.pid} | {c.pid for c in main.children(recursive=True)}
        except psutil.Error:
            return {main.pid}

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn.close()
        self.cluster.destroy()


# -- the relay process ------------------------------------------------------------------------


class RelayProcess:
    """`relay serve` as a subprocess with the given RELAY_* settings, stopped with SIGTERM."""

    def __init__(
        self,
        workdir: Path,
        database_url: str | None,
        settings: dict[str, str],
        python_options: Sequence[str] = (),
        relay_cli: Path = Path(sys.executable).parent / "relay",
    ) -> None:
        """`python_options` run the relay as `python OPTIONS -m relay.cli` (e.g. cProfile).

        No `database_url`: the embedded default, `./var/relay.db` in `workdir`. `relay_cli`
        may be another checkout's `relay` script (a before/after comparison)."""
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the spool must be private
        self.port = reserved_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        if database_url is not None:
            env["RELAY_DATABASE_URL"] = database_url
        env.update(
            RELAY_SPOOL_PATH=str(workdir / "spool.db"),
            RELAY_PORT=str(self.port),
            RELAY_ALLOW_PRIVATE_DESTINATIONS="true",  # the receivers are on 127.0.0.1
            **settings,
        )
        self.log_path = workdir / "relay.log"
        self._log = self.log_path.open("wb")
        command = [str(relay_cli)]
        if python_options or not relay_cli.exists():
            command = [sys.executable, *python_options, "-m", "relay.cli"]
        self.proc = subprocess.Popen(
            [*command, "serve", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        self.process = psutil.Process(self.proc.pid)
        self.exit_code: int | None = None

    async def wait_ready(self) -> None:
        """Until the intake answers (a GET is refused with 405 once the app is up)."""
        give_up = time.monotonic() + START_TIMEOUT
        while time.monotonic() < give_up:
            if self.proc.poll() is not None:
                break
            try:
                conn = await RawConnection.open(self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            try:
                status, _ = await conn.get("/v1/events")
                if status == 405:
                    return
            except (OSError, RawHttpError):
                pass
            finally:
                await conn.close()
            await asyncio.sleep(0.05)
        self.stop()
        raise RuntimeError(f"relay did not start; log tail:\n{self.log_tail()}")

    def cpu(self) -> float:
        """CPU of the relay: intake's process and its dispatcher and drain children."""
        return sum(self.cpu_by_role().values())

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds of intake's process and of each child, by the `relay` command it runs
        (`dispatcher`, `drain`), so a cost can be traced to the process that pays it."""
        if self.process is None:
            return {}
        by_role = {"intake": cpu_seconds(self.process)}
        try:
            children = self.process.children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            try:
                arguments = child.cmdline()
            except psutil.Error:
                continue
            role = next((a for a in arguments if a in CHILD_ROLES), "other")
            by_role[role] = by_role.get(role, 0.0) + cpu_seconds(child)
        return by_role

    def stop(self) -> int | None:
        """SIGTERM: the relay finishes POSTs in flight and flushes its log, then exits 0."""
        self.exit_code = _terminate(self.proc, STOP_TIMEOUT)
        self._log.close()
        return self.exit_code

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- a pre-filled inbox -----------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    """One POST as the relay would send it: URL, body and Standard Webhooks headers."""

    url: str
    port: int
    path: str
    body: bytes
    headers: dict[str, str]


def prefill_inbox(
    spool_path: Path, database_url: str, bodies: Sequence[bytes], secrets: dict[str, str]
) -> list[Post]:
    """Store the deliveries of `bodies` in a relay spool's inbox, as the intake would.

    One transaction (this is set-up, not measured). Returns the same POSTs, signed as the
    relay signs them, for the bare clients to send.
    """
    spool_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = make_engine(database_url)
    try:
        snapshot = load_snapshot(engine)
    finally:
        engine.dispose()
    now = utc_now()
    deliveries: list[Delivery] = []
    for body in bodies:
        event = parse_event(body)
        deliveries.extend(deliveries_for(snapshot, event, event.id or "", now))
    spool = SpoolDatabase(spool_path, synchronous="FULL")
    try:
        inbox = EventInbox(spool, idempotency_window=timedelta(hours=24))

        def store(conn: Any) -> None:
            for delivery in deliveries:
                inbox.queue.enqueue_in(conn, delivery.host, delivery.encode(), item_id=delivery.id)

        spool.write(store)
    finally:
        spool.close()
    return [_signed_post(d, secrets.get(d.url)) for d in deliveries]


def _signed_post(delivery: Delivery, secret: str | None) -> Post:
    body = delivery.body.encode()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": "relay/bench",
        "webhook-id": delivery.id,
        "webhook-timestamp": str(timestamp),
    }
    if secret:
        headers["webhook-signature"] = sign(secret, delivery.id, timestamp, body)
    rest = delivery.url.split("//", 1)[1]
    hostport, _, path = rest.partition("/")
    return Post(delivery.url, int(hostport.rsplit(":", 1)[1]), "/" + path, body, headers)


@contextlib.contextmanager
def relay_process(
    workdir: Path, database_url: str, settings: dict[str, str]
) -> Iterator[RelayProcess]:
    relay = RelayProcess(workdir, database_url, settings)
    try:
        yield relay
    finally:
        relay.stop()
