"""A uvicorn server in a background thread on 127.0.0.1: for `relay demo` and the tests."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal

import uvicorn

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def read_body(receive: Receive) -> bytes:
    """The whole request body of an ASGI http request (it may come in several messages)."""
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


class ThreadedServer:
    """Runs an ASGI app under uvicorn on 127.0.0.1 in a background thread.

    `port` 0 takes a free one; a test that restarts a server on the port its clients know
    passes the port of the previous run.
    """

    def __init__(
        self, app: ASGIApp, *, lifespan: Literal["on", "off"] = "off", port: int = 0
    ) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan=lifespan,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 15) -> ThreadedServer:
        self._thread.start()
        stop = threading.Event()
        for _ in range(int(timeout / 0.01)):  # bounded wait for the socket
            if self.server.started:
                return self
            if not self._thread.is_alive():
                break
            stop.wait(0.01)
        raise RuntimeError("uvicorn did not start")

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 30) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
