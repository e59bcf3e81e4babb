"""A minimal HTTP/1.1 keep-alive client on asyncio streams: the service benchmark's load.

The load generator shares 2 cores with the relay, the receiver and PostgreSQL. httpx costs
a few hundred microseconds of CPU per request; hand-written HTTP/1.1 over a kept-alive
socket costs a few tens, so the client is not what limits (or delays) the relay under test.
Only what the relay and the receiver answer is supported: responses with Content-Length.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

HOST = "127.0.0.1"


class RawHttpError(Exception):
    """The server answered something this tiny client does not understand, or hung up."""


class RawConnection:
    """One kept-alive connection; one request at a time."""

    def __init__(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.port = port
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
        return cls(port, reader, writer)

    def head(self, method: str, path: str, length: int, extra: str = "") -> bytes:
        return (
            f"{method} {path} HTTP/1.1\r\nhost: {HOST}:{self.port}\r\n"
            f"content-type: application/json\r\ncontent-length: {length}\r\n{extra}\r\n"
        ).encode()

    async def request(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request, return (status, body)."""
        self._writer.write(head + body)
        try:
            raw = await self._reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise RawHttpError(f"connection closed or garbled: {exc}") from exc
        status = int(raw[9:12])
        length = None
        for line in raw.lower().split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                length = int(value.strip())
        if length is None:
            raise RawHttpError(f"answer without content-length: {raw[:200]!r}")
        return status, await self._reader.readexactly(length)

    async def post(self, path: str, body: bytes, extra_headers: str = "") -> tuple[int, bytes]:
        return await self.request(self.head("POST", path, len(body), extra_headers), body)

    async def get(self, path: str) -> tuple[int, bytes]:
        return await self.request(self.head("GET", path, 0))

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


@dataclass
class Timed:
    """Send and completion times (monotonic) and statuses of a batch of requests."""

    first_sent: float = 0.0
    last_done: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def count(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)


async def closed_loop(
    port: int, path: str, bodies: Sequence[bytes], concurrency: int, deadline: float
) -> Timed:
    """POST every body as fast as `concurrency` connections allow (a burst)."""
    timed = Timed()
    next_index = 0
    connections = [await RawConnection.open(port) for _ in range(concurrency)]

    async def worker(conn: RawConnection) -> None:
        nonlocal next_index
        while next_index < len(bodies) and time.monotonic() < deadline:
            body = bodies[next_index]
            next_index += 1
            try:
                status, _ = await conn.post(path, body)
            except (OSError, RawHttpError) as exc:
                timed.errors.append(str(exc))
                return
            timed.count(status)

    timed.first_sent = time.monotonic()
    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        timed.last_done = time.monotonic()
        for conn in connections:
            await conn.close()
    return timed


async def per_host_loop(
    work: Sequence[tuple[int, str, bytes, str]], per_host: int, deadline: float
) -> Timed:
    """POST (port, path, body, headers) items with `per_host` connections to each port.

    Mirrors the relay's bounds: `per_host` in flight per host, every host busy at once.
    """
    timed = Timed()
    by_port: dict[int, list[tuple[str, bytes, str]]] = {}
    for port, path, body, headers in work:
        by_port.setdefault(port, []).append((path, body, headers))
    cursors = dict.fromkeys(by_port, 0)
    connections = [await RawConnection.open(port) for port in by_port for _ in range(per_host)]

    async def worker(conn: RawConnection) -> None:
        items = by_port[conn.port]
        while cursors[conn.port] < len(items) and time.monotonic() < deadline:
            path, body, headers = items[cursors[conn.port]]
            cursors[conn.port] += 1
            try:
                status, _ = await conn.post(path, body, headers)
            except (OSError, RawHttpError) as exc:
                timed.errors.append(str(exc))
                return
            timed.count(status)

    timed.first_sent = time.monotonic()
    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        timed.last_done = time.monotonic()
        for conn in connections:
            await conn.close()
    return timed


@dataclass
class OpenLoopResult:
    """Latency of each request from its scheduled send time (no coordinated omission)."""

    scheduled: int
    latencies: list[float]  # seconds, of the requests answered 2xx
    statuses: dict[int, int]
    errors: list[str]
    started: float
    finished: float
    late_sends: int  # requests the client itself sent more than 5 ms after their slot


async def open_loop(
    port: int,
    path: str,
    bodies: Sequence[bytes],
    rate: float,
    connections: int,
    deadline: float,
) -> OpenLoopResult:
    """Send `bodies` at a fixed schedule of `rate` per second, whatever the answers do.

    A request waits for a free connection if all are busy; that wait counts in its latency,
    as it would for a real caller, since latency is measured from the scheduled time.
    """
    pool: asyncio.Queue[RawConnection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await RawConnection.open(port))
    result = OpenLoopResult(len(bodies), [], {}, [], 0.0, 0.0, 0)
    loop = asyncio.get_running_loop()

    async def one(slot: float, body: bytes) -> None:
        conn = await pool.get()
        if loop.time() - slot > 0.005:
            result.late_sends += 1
        try:
            status, _ = await conn.post(path, body)
        except (OSError, RawHttpError) as exc:
            result.errors.append(str(exc))
            await conn.close()
            conn = await RawConnection.open(port)
        else:
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                result.latencies.append(loop.time() - slot)
        finally:
            pool.put_nowait(conn)

    tasks: list[asyncio.Task[None]] = []
    start = loop.time() + 0.05
    result.started = time.monotonic() + 0.05
    for index, body in enumerate(bodies):
        slot = start + index / rate
        delay = slot - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(slot, body)))
    remaining = max(0.1, deadline - time.monotonic())
    _done, pending = await asyncio.wait(tasks, timeout=remaining)
    for task in pending:
        task.cancel()
    result.errors.extend("no answer before the deadline" for _ in pending)
    result.finished = time.monotonic()
    while not pool.empty():
        await pool.get_nowait().close()
    return result
