"""A stand-in for the call-center platform: a real python-socketio server on 127.0.0.1.

The platform pushes each company's events over socket.io to the connection that presented
that company's token (`?token=...`). This server does the same, and lets a test act on it:
`emit` to one token's connections, `drop` them from the server side, `refuse` a token from
now on, `stop` and `start` again on the same port (a platform restart). It records every
connection attempt, accepted or refused, and how many connections each token has open.

    with PlatformServer({"tok-a": "Acme"}) as platform:
        ...connect a client to platform.url with ?token=tok-a...
        platform.emit("tok-a", "call-history-was-created", {"id": 1})
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import socketio

from relay.demo.local_server import ThreadedServer
from tests.support.ports import reserved_port

__all__ = ["PlatformServer"]


class PlatformServer:
    """A socket.io server that authenticates by token and records what clients did.

    Thread-safe: the server runs in its own thread and event loop; every method here is
    called from the test's thread. The counters survive restarts; the connections do not.
    """

    def __init__(self, tokens: Mapping[str, str] | None = None) -> None:
        self._tokens: dict[str, str] = dict(tokens or {})  # token -> company name
        self._lock = threading.Lock()
        self._lifecycle = threading.Lock()  # start/stop/emit/drop never overlap
        self._sids: dict[str, str] = {}  # open connection -> its token
        self._attempts: Counter[str] = Counter()
        self._connects: Counter[str] = Counter()
        self._disconnects: Counter[str] = Counter()
        self._port = 0  # 0 until the first start; then every restart reuses it
        self._server: ThreadedServer | None = None
        self._sio: socketio.AsyncServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> PlatformServer:
        """Serve (again) on the same port; a fresh socket.io server, as after a restart."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError("already running")
            loop_ready = threading.Event()
            sio = socketio.AsyncServer(
                async_mode="asgi", logger=False, engineio_logger=False, cors_allowed_origins=[]
            )
            self._register_handlers(sio)

            def started() -> None:
                self._loop = asyncio.get_running_loop()
                loop_ready.set()

            app = socketio.ASGIApp(sio, on_startup=started)
            server = ThreadedServer(app, lifespan="on", port=self._port or reserved_port()).start()
            if not loop_ready.wait(10):
                server.stop()
                raise RuntimeError("the platform server's loop did not start")
            self._sio, self._server, self._port = sio, server, server.port
            return self

    def stop(self) -> None:
        """Stop serving: uvicorn closes every websocket (code 1012), as a platform restart."""
        with self._lifecycle:
            server, self._server, self._sio, self._loop = self._server, None, None, None
            if server is not None:
                server.stop()
            with self._lock:
                for token in self._sids.values():  # a connection the shutdown cut short
                    self._disconnects[token] += 1
                self._sids.clear()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("not started yet")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PlatformServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- what the test does to the clients ---------------------------------------------

    def accept(self, token: str, company: str) -> None:
        """Know `token` from now on (a company the platform has)."""
        with self._lock:
            self._tokens[token] = company

    def refuse(self, token: str) -> None:
        """Forget `token`: its next connection attempts are refused; open ones stay open."""
        with self._lock:
            self._tokens.pop(token, None)

    def emit(self, token: str, event: str, data: Any) -> int:
        """Send `event` with `data` to every connection of `token`; how many it went to
        (0 when the server is stopped or the token has no connection)."""
        with self._lifecycle:
            sio = self._sio
            if sio is None:
                return 0
            with self._lock:
                count = sum(1 for owner in self._sids.values() if owner == token)
            if count:
                self._run(sio.emit(event, data, room=token))
            return count

    def emit_many(self, token: str, event: str, documents: list[Any]) -> int:
        """Send `event` once per document to `token`'s connections, back to back in the
        server's loop (a burst, without a thread hop per event); how many were sent."""
        with self._lifecycle:
            sio = self._sio
            if sio is None or not self.connected(token):
                return 0

            async def burst() -> None:
                for document in documents:
                    await sio.emit(event, document, room=token)

            self._run(burst(), timeout=600)
            return len(documents)

    def drop(self, token: str) -> int:
        """Disconnect every connection of `token` from the server side; how many."""
        with self._lifecycle:
            sio = self._sio
            if sio is None:
                return 0
            with self._lock:
                sids = [sid for sid, owner in self._sids.items() if owner == token]
            for sid in sids:
                self._run(sio.disconnect(sid))
            return len(sids)

    # -- what the test reads -----------------------------------------------------------

    def connected(self, token: str) -> int:
        """Connections of `token` open now."""
        with self._lock:
            return sum(1 for owner in self._sids.values() if owner == token)

    def attempts(self, token: str) -> int:
        """Connection attempts that presented `token`, accepted or refused, over all runs."""
        with self._lock:
            return self._attempts[token]

    def connects(self, token: str) -> int:
        """Connections of `token` the server accepted, over all runs."""
        with self._lock:
            return self._connects[token]

    def disconnects(self, token: str) -> int:
        """Connections of `token` that ended, whoever ended them, over all runs."""
        with self._lock:
            return self._disconnects[token]

    # -- inside the server's loop ------------------------------------------------------

    def _run(self, coroutine: Any, timeout: float = 10) -> Any:
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise RuntimeError("not running")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=timeout)

    def _register_handlers(self, sio: socketio.AsyncServer) -> None:
        @sio.event
        async def connect(sid: str, environ: dict[str, Any], _auth: Any = None) -> None:
            token = parse_qs(environ.get("QUERY_STRING", "")).get("token", [""])[0]
            with self._lock:
                self._attempts[token] += 1
                known = token in self._tokens
                if known:
                    self._sids[sid] = token
                    self._connects[token] += 1
            if not known:
                raise socketio.exceptions.ConnectionRefusedError("invalid token")
            await sio.enter_room(sid, token)

        @sio.event
        async def disconnect(sid: str, _reason: Any = None) -> None:
            with self._lock:
                token = self._sids.pop(sid, None)
                if token is not None:
                    self._disconnects[token] += 1
