"""Webhook receivers for the tests: real HTTP servers on 127.0.0.1 that record every POST.

`Receiver` is an ASGI app (served by `ThreadedServer`) whose path says how it answers;
`ResettingReceiver` is a raw TCP listener that reads a request, then resets the connection.
Both record into a `PostLog`, which several receivers of one scenario may share.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from relay.demo.local_server import Receive, Scope, Send, ThreadedServer, read_body
from tests.support.tcp_proxy import accepted, reset

__all__ = [
    "Post",
    "PostLog",
    "Receiver",
    "ResettingReceiver",
    "RunningReceiver",
    "ThreadedServer",
    "running_receiver",
]

_FAULT_ID = re.compile(rb'"data":\{"fault_id":"([^"]+)"')
KINDS = frozenset(
    {"ok", "status", "retry-after", "hang", "slow", "flaky", "redirect", "set-cookie"}
)


@dataclass(frozen=True)
class Post:
    """One POST a receiver saw, recorded on arrival, and what it answered (None: not yet, or
    never). `tag` is the path's first segment: who the webhook is, in a scenario."""

    path: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    received_at: float
    status: int | None = None
    tag: str = field(init=False)
    webhook_id: str = field(init=False)
    fault_id: str | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag", self.path.strip("/").split("/")[0])
        object.__setattr__(self, "webhook_id", self.headers.get("webhook-id", ""))
        object.__setattr__(self, "fault_id", _fault_id_of(self.body))

    def json(self) -> Any:
        return json.loads(self.body)


def _fault_id_of(body: bytes) -> str | None:
    """`data.fault_id` of an event body: the id a fault scenario tracks the event by."""
    try:
        data = json.loads(body).get("data")
    except RecursionError:  # nested deeper than Python parses: find the id by its text
        found = _FAULT_ID.search(body)
        return found.group(1).decode() if found else None
    except (ValueError, AttributeError):
        return None
    value = data.get("fault_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


class PostLog:
    """Thread-safe record of POSTs, in arrival order."""

    def __init__(self) -> None:
        self._posts: list[Post] = []
        self._lock = threading.Lock()

    def add(self, post: Post) -> tuple[int, int]:
        """Record `post`; return its index and how many POSTs its webhook-id has had."""
        with self._lock:
            self._posts.append(post)
            tries = sum(1 for p in self._posts if p.webhook_id == post.webhook_id)
            return len(self._posts) - 1, tries

    def answered(self, index: int, status: int) -> None:
        with self._lock:
            self._posts[index] = dataclasses.replace(self._posts[index], status=status)

    def posts(self, tag: str | None = None) -> list[Post]:
        with self._lock:
            return [p for p in self._posts if tag is None or p.tag == tag]

    def on(self, path_prefix: str) -> list[Post]:
        """The POSTs whose path starts with `path_prefix`."""
        with self._lock:
            return [p for p in self._posts if p.path.startswith(path_prefix)]

    def delivered(self) -> set[tuple[str, str]]:
        """(fault_id, tag) pairs answered 2xx."""
        return {
            (p.fault_id, p.tag)
            for p in self.posts()
            if p.fault_id is not None and p.status is not None and 200 <= p.status < 300
        }


class Receiver:
    """An ASGI webhook receiver that records every POST and answers as its path says.

    The path is `[/<tag>]/<kind>[/<arg>][/...]`, the kind being its last segment that names
    one: `ok` 200 · `status/<code>` that code · `retry-after/<s>` 429 with Retry-After ·
    `hang` never answers · `slow/<s>` 200 after s seconds · `flaky/<n>` 503 for the first n
    tries of each webhook-id, then 200 · `redirect` 307 to `/<tag>/ok` · `set-cookie` 200
    with a Set-Cookie header. A hanging or slow POST stops waiting when the client hangs up.
    `on_request` runs before the answer (e.g. to SIGKILL the relay while a POST is in flight).
    """

    def __init__(self, log: PostLog | None = None) -> None:
        self.log = log if log is not None else PostLog()
        self.on_request: Callable[[], None] | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    @property
    def requests(self) -> list[Post]:
        """Every POST this receiver's log holds."""
        return self.log.posts()

    def on(self, path_prefix: str) -> list[Post]:
        return self.log.on(path_prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        post = Post(scope["path"], headers, body, time.monotonic())
        index, tries = self.log.add(post)
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            hook = self.on_request
            if hook is not None:
                hook()
            kind, arg = _kind_of(post.path)
            if kind in ("hang", "slow") and await _hung_up(
                receive, 3600.0 if kind == "hang" else float(arg)
            ):
                return
            status, extra = _answer(post.tag, kind, arg, tries)
            await send({"type": "http.response.start", "status": status, "headers": extra})
            await send({"type": "http.response.body", "body": b"{}"})
            self.log.answered(index, status)
        finally:
            with self._lock:
                self.in_flight -= 1


def _kind_of(path: str) -> tuple[str, str]:
    """The last segment of `path` that names a kind, and the segment after it."""
    parts = path.strip("/").split("/")
    at = max((n for n, part in enumerate(parts) if part in KINDS), default=None)
    if at is None:
        return "ok", ""
    return parts[at], parts[at + 1] if at + 1 < len(parts) else ""


def _answer(tag: str, kind: str, arg: str, tries: int) -> tuple[int, list[tuple[bytes, bytes]]]:
    if kind == "status":
        return int(arg), []
    if kind == "retry-after":
        return 429, [(b"retry-after", arg.encode())]
    if kind == "flaky" and tries <= int(arg):
        return 503, []
    if kind == "redirect":
        return 307, [(b"location", f"/{tag}/ok".encode())]
    if kind == "set-cookie":
        return 200, [(b"set-cookie", b"session=abc123; Path=/")]
    return 200, []


async def _hung_up(receive: Receive, seconds: float) -> bool:
    """Wait `seconds`; True as soon as the client hangs up (the POST is then no longer in
    flight), False when the time is up."""
    try:
        await asyncio.wait_for(_disconnected(receive), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class RunningReceiver(NamedTuple):
    """A `Receiver` being served, and its base URL."""

    receiver: Receiver
    url: str


@contextlib.contextmanager
def running_receiver(log: PostLog | None = None) -> Iterator[RunningReceiver]:
    """Serve a `Receiver` (recording into `log`, or a log of its own) on 127.0.0.1."""
    receiver = Receiver(log)
    with ThreadedServer(receiver) as server:
        yield RunningReceiver(receiver, server.url)


class ResettingReceiver:
    """A raw TCP 'receiver' that reads the request, records it, then resets the connection."""

    def __init__(self, log: PostLog, tag: str) -> None:
        self.log = log
        self.tag = tag
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> ResettingReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        for conn in accepted(self._sock, self._stop):
            with conn:
                conn.settimeout(5)
                self._read_and_reset(conn)

    def _read_and_reset(self, conn: socket.socket) -> None:
        request = _read_request(conn)
        if request is None:
            return
        headers, body = request
        self.log.add(Post(f"/{self.tag}", headers, body, time.monotonic()))
        reset(conn)


def _read_request(conn: socket.socket) -> tuple[dict[str, str], bytes] | None:
    """Headers and body of one HTTP/1.1 request (None if the peer went away first)."""
    data = b""
    try:
        while b"\r\n\r\n" not in data and len(data) < 1 << 20:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode(errors="replace").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
    except (OSError, ValueError):
        return None
    return headers, body
