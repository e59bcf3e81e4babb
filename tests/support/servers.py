"""A recording webhook receiver for tests (served by `ThreadedServer` on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from relay.demo.local_server import Receive, Scope, Send, ThreadedServer, read_body

__all__ = ["ReceivedRequest", "Receiver", "ThreadedServer"]


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver that records every POST and answers as its path says.

    `/ok` 200 · `/status/<code>` that code · `/retry-after/<s>` 429 with Retry-After ·
    `/hang` never answers · `/slow/<s>` answers 200 after s seconds ·
    `/flaky/<n>` 503 for the first n tries of each webhook-id, then 200 ·
    `/set-cookie` 200 with a Set-Cookie header.
    """

    requests: list[ReceivedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, path_prefix: str) -> list[ReceivedRequest]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        request = ReceivedRequest(scope["path"], headers, body)
        with self.lock:
            self.requests.append(request)
            tries = sum(
                1 for r in self.requests if r.headers.get("webhook-id") == headers.get("webhook-id")
            )
        status, extra = await self._answer(scope["path"], tries)
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": b"{}"})

    @staticmethod
    async def _answer(path: str, tries: int) -> tuple[int, list[tuple[bytes, bytes]]]:
        parts = path.strip("/").split("/")
        kind, arg = parts[0], (parts[1] if len(parts) > 1 else "")
        if kind == "status":
            return int(arg), []
        if kind == "retry-after":
            return 429, [(b"retry-after", arg.encode())]
        if kind == "hang":
            await asyncio.sleep(3600)
        if kind == "slow":
            await asyncio.sleep(float(arg))
        if kind == "flaky" and tries <= int(arg):
            return 503, []
        if kind == "set-cookie":
            return 200, [(b"set-cookie", b"session=abc123; Path=/")]
        return 200, []
