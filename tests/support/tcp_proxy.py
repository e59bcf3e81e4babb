"""A TCP proxy on 127.0.0.1 that can cut the network between a relay and its database."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

_pause = threading.Event()  # never set: `_pause.wait(s)` is an interruptible pacing wait
_RST = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close() sends RST


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target port; can stop forwarding or reset everything.

    `forward`: bytes flow. `blackhole`: connections stay open but nothing is forwarded (a
    silent network cut: neither side hears from the other). `reset`: every connection is
    reset, and new ones are reset as soon as they are accepted.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "forward"
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.connections = 0
        self.resets = 0

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def __enter__(self) -> TcpProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self.reset_all()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def set_mode(self, mode: str) -> None:
        assert mode in ("forward", "blackhole", "reset")
        self.mode = mode
        if mode == "reset":
            self.reset_all()

    def reset_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                reset(sock)
            self.resets += 1

    def _accept(self) -> None:
        for client in accepted(self._listener, self._stop):
            if self.mode == "reset":
                reset(client)
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                reset(client)
                continue
            self.connections += 1
            with self._lock:
                self._pairs.append((client, server))
            self._spawn(self._pump, client, server)
            self._spawn(self._pump, server, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            source.settimeout(0.05)
        except OSError:  # reset (closed) before this thread got going: a busy CPU
            return
        while not self._stop.is_set():
            if self.mode != "forward":
                if self.mode == "reset":
                    return
                _pause.wait(0.05)  # blackhole: leave the bytes where they are
                continue
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                sink.sendall(data)
            except OSError:
                break
        reset(source)
        reset(sink)


def accepted(listener: socket.socket, stop: threading.Event) -> Iterator[socket.socket]:
    """The connections `listener` accepts until `stop` is set or the listener is closed (it
    has a timeout, so that `stop` is looked at between accepts)."""
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        yield conn


def reset(sock: socket.socket) -> None:
    """Close `sock` with a TCP reset (RST), not the orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
    with contextlib.suppress(OSError):
        sock.close()
