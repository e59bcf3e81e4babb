"""A counting webhook receiver in its own process, for the service benchmark.

    python -m bench.service_receiver --ports 8     # prints {"ports": [...]} once listening

It answers every POST `200 {}` and counts it. It is a bare asyncio protocol rather than a
uvicorn app on purpose: the relay's POST rate is what is measured, and on a 2-core machine a
receiver costing ~0.3 ms of CPU per request (uvicorn + h11, no httptools here) would take a
large share of the CPU the relay needs. Several ports stand for several customer hosts, so
the relay's per-host bound (`RELAY_MAX_PER_HOST`, 8) is not what limits the measurement.

`GET /_stats` answers `{"posts": N, "first": t, "last": t}` with `time.monotonic()` stamps of
the first and last POST (CLOCK_MONOTONIC is system-wide on Linux, so the benchmark process
can compare them with its own); `GET /_reset` zeroes the counters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
import time
from dataclasses import dataclass

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
MAX_HEAD = 64 * 1024


@dataclass
class Counter:
    """POSTs seen since the last reset, with the monotonic time of the first and last."""

    posts: int = 0
    first: float | None = None
    last: float | None = None

    def hit(self) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        self.last = now
        self.posts += 1

    def answer(self) -> bytes:
        body = json.dumps({"posts": self.posts, "first": self.first, "last": self.last}).encode()
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
        return head.encode() + b"\r\n\r\n" + body


class ReceiverProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length bodies only (all the relay and httpx send here)."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._one_request():
            pass

    def _one_request(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD and self.transport is not None:
                self.transport.close()
            return False
        head = bytes(self.buffer[:end]).lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip() == b"content-length":
                length = int(value.strip())
        total = end + 4 + length
        if len(self.buffer) < total:
            return False
        del self.buffer[:total]
        assert self.transport is not None
        if head.startswith(b"post "):
            self.counter.hit()
            self.transport.write(OK)
        elif head.startswith(b"get /_reset"):
            self.counter.posts, self.counter.first, self.counter.last = 0, None, None
            self.transport.write(self.counter.answer())
        else:
            self.transport.write(self.counter.answer())
        return True


async def serve(ports: int) -> None:
    counter = Counter()
    loop = asyncio.get_running_loop()
    servers = []
    for _ in range(ports):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        servers.append(
            await loop.create_server(lambda: ReceiverProtocol(counter), sock=sock, backlog=1024)
        )
    bound = [s.sockets[0].getsockname()[1] for s in servers]
    print(json.dumps({"ports": bound}), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=8, help="listening ports (customer hosts)")
    args = parser.parse_args()
    asyncio.run(serve(args.ports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
