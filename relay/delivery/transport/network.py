"""httpcore's network layer on plain asyncio: the sockets under the dispatcher's POSTs.

httpcore's default backend goes through anyio, whose per-call machinery (a cancel scope per
read and write, a fresh dict of socket attributes each time the pool asks whether an idle
connection was closed by its server) was over a quarter of the dispatcher's CPU (py-spy,
2026-12-01). The relay only runs on asyncio, so this backend talks to an asyncio transport
directly: reads and writes under `asyncio.timeout`, and the "was it closed?" question
answered from what the transport has already delivered, without a system call.

Errors are httpcore's own (`ReadTimeout`, `ConnectError` ...), which httpx maps to its
exceptions as it does for its default backend.
"""

from __future__ import annotations

import asyncio
import ssl
import typing

import httpcore
import httpx

# Bytes the transport may buffer before it stops reading from the socket (backpressure).
READ_BUFFER_LIMIT = 256 * 1024


class _StreamProtocol(asyncio.Protocol):
    """Buffers what arrives and wakes the one reader or writer waiting on the connection
    (httpcore runs one request at a time per HTTP/1.1 connection)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost: Exception | None = None  # why the connection broke, if it did
        self.closed = False
        self._data_waiter: asyncio.Future[None] | None = None
        self.write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # -- asyncio callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > READ_BUFFER_LIMIT and self.transport is not None:
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = self.eof = True
        self.lost = exc
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writer()

    # -- what the stream awaits ---------------------------------------------------------------

    async def wait_for_data(self) -> None:
        waiter = self._data_waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._data_waiter = None

    async def drain(self) -> None:
        if not self.write_paused or self.closed:
            return
        waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._drain_waiter = None

    def _wake_reader(self) -> None:
        if self._data_waiter is not None and not self._data_waiter.done():
            self._data_waiter.set_result(None)

    def _wake_writer(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection as httpcore wants it."""

    def __init__(self, transport: asyncio.Transport, protocol: _StreamProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        # After `start_tls` the protocol gets decrypted data from a new transport, which is
        # the one to pause and resume: pausing the socket's under TLS's buffers hung a
        # reader that had fallen behind (its resume went to the TLS transport, not paused).
        protocol.transport = transport

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            try:
                async with asyncio.timeout(timeout):
                    await protocol.wait_for_data()
            except TimeoutError as exc:
                raise httpcore.ReadTimeout(f"no data within {timeout:g} s") from exc
        if protocol.buffer:
            data = bytes(protocol.buffer[:max_bytes])
            del protocol.buffer[:max_bytes]
            if len(protocol.buffer) <= READ_BUFFER_LIMIT and not protocol.closed:
                self._transport.resume_reading()
            return data
        if protocol.lost is not None:
            raise httpcore.ReadError(str(protocol.lost) or type(protocol.lost).__name__)
        return b""  # the server closed its side

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._protocol.closed or self._transport.is_closing():
            raise httpcore.WriteError(self._closed_reason())
        self._transport.write(buffer)
        if self._protocol.write_paused:  # the socket's buffer is full: wait for it to drain
            try:
                async with asyncio.timeout(timeout):
                    await self._protocol.drain()
            except TimeoutError as exc:
                raise httpcore.WriteTimeout(f"could not send within {timeout:g} s") from exc
        if self._protocol.lost is not None:
            raise httpcore.WriteError(self._closed_reason())

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout(f"TLS handshake took over {timeout:g} s") from exc
        except (OSError, ssl.SSLError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(f"TLS handshake failed: {exc}") from exc
        if transport is None:  # the peer went away during the handshake
            raise httpcore.ConnectError("connection closed during the TLS handshake")
        assert isinstance(transport, asyncio.Transport)
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            # An idle connection with something to read was closed by its server (or sent
            # junk). The transport reads whenever the loop polls, so the protocol knows as
            # much as a poll of the socket would have at that moment; asking the socket
            # again (httpcore's way) cost a system call per idle connection per request.
            return self._protocol.eof or bool(self._protocol.buffer)
        key = {
            "ssl_object": "ssl_object",
            "client_addr": "sockname",
            "server_addr": "peername",
            "socket": "socket",
        }.get(info)
        return None if key is None else self._transport.get_extra_info(key)

    def _closed_reason(self) -> str:
        lost = self._protocol.lost
        return f"connection closed: {lost}" if lost is not None else "connection closed"


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens `AsyncioStream`s; TCP_NODELAY is on (asyncio's default for TCP)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _StreamProtocol,
                    host,
                    port,
                    local_addr=None if local_address is None else (local_address, 0),
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"connecting took over {timeout:g} s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        assert isinstance(transport, asyncio.Transport)
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class PooledTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, over a connection pool whose connections `backend` opens."""

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext,
        backend: httpcore.AsyncNetworkBackend,
    ) -> None:
        super().__init__(verify=ssl_context, limits=limits)
        # httpx takes no network backend (encode/httpx#3749 proposes one), so the pool it
        # just built, in the private `_pool` it sends through, is replaced by the same pool
        # over `backend`. Checked against the httpx and httpcore versions pyproject.toml pins
        # (tests/relay/test_httpx_pin.py). Should a release rename the attribute, this would
        # bypass `backend` (and with it the SSRF guard) without a word: refuse instead.
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError(
                f"httpx {httpx.__version__} no longer keeps its connection pool in `_pool`: "
                "relay/delivery/transport/network.py cannot put its network backend under it"
            )
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )
