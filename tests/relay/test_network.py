"""The asyncio network backend under httpx (relay/network.py), over real sockets on 127.0.0.1.

Each test runs a small HTTP/1.1 peer on asyncio streams in the test's own event loop, so
the peer can do what a well-behaved server would not: close an idle keep-alive connection,
never answer, cut a response short, reset the connection. TLS uses a throwaway CA
(trustme).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import trustme

from relay.delivery.transport.network import READ_BUFFER_LIMIT, AsyncioBackend, PooledTransport
from tests.support.ports import reserved_port

LIMITS = httpx.Limits(max_connections=2, max_keepalive_connections=2)
BIG = 4 * 1024 * 1024  # well past the socket buffers and the backend's read buffer limit


@dataclass(frozen=True)
class Request:
    head: bytes
    body: bytes


Answer = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


async def ok(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    await writer.drain()


@dataclass
class Peer:
    """Reads requests (Content-Length bodies only) and lets `answer` respond to each."""

    answer: Answer = ok
    close_after_answer: bool = False  # then close the connection, as an idle timeout would
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = Request(head, await reader.readexactly(length))
                self.requests.append(request)
                await self.answer(request, writer)
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            await writer.wait_closed()
            self.closed.set()


@asynccontextmanager
async def serving(peer: Peer, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    server = await asyncio.start_server(peer.handle, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def transport(ssl_context: ssl.SSLContext | None = None) -> PooledTransport:
    return PooledTransport(
        limits=LIMITS,
        ssl_context=ssl_context or ssl.create_default_context(),
        backend=AsyncioBackend(),
    )


async def post(
    pool: PooledTransport, url: str, body: bytes = b"{}", timeout: float = 5.0
) -> tuple[httpx.Response, bytes]:
    request = httpx.Request(
        "POST", url, content=body, extensions={"timeout": httpx.Timeout(timeout).as_dict()}
    )
    response = await pool.handle_async_request(request)
    try:
        content = b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()
    return response, content


def test_posts_go_over_one_kept_alive_connection() -> None:
    async def scenario() -> None:
        peer = Peer()
        async with serving(peer) as port:
            pool = transport()
            for n in range(3):
                response, content = await post(pool, f"http://127.0.0.1:{port}/", b'{"n":%d}' % n)
                assert (response.status_code, content) == (200, b"ok")
            await pool.aclose()
        assert [r.body for r in peer.requests] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
        assert peer.connections == 1

    asyncio.run(scenario())


def test_a_connection_its_server_closed_while_idle_is_replaced() -> None:
    async def scenario() -> None:
        peer = Peer(close_after_answer=True)
        async with serving(peer) as port:
            pool = transport()
            response, _ = await post(pool, f"http://127.0.0.1:{port}/")
            stream = response.extensions["network_stream"]
            await asyncio.wait_for(peer.closed.wait(), 5)
            # The server's FIN reaches the backend at the loop's next poll (bounded wait).
            for _ in range(500):
                if stream.get_extra_info("is_readable"):
                    break
                await asyncio.sleep(0.01)
            assert stream.get_extra_info("is_readable") is True
            response, content = await post(pool, f"http://127.0.0.1:{port}/")
            assert (response.status_code, content) == (200, b"ok")
            await pool.aclose()
        assert peer.connections == 2

    asyncio.run(scenario())


def test_an_idle_open_connection_is_not_readable() -> None:
    async def scenario() -> None:
        async with serving(Peer()) as port:
            pool = transport()
            response, _ = await post(pool, f"http://127.0.0.1:{port}/")
            stream = response.extensions["network_stream"]
            assert stream.get_extra_info("is_readable") is False
            assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
            assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
            assert stream.get_extra_info("ssl_object") is None
            assert stream.get_extra_info("no such thing") is None
            await pool.aclose()

    asyncio.run(scenario())


def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    async def hang(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    async def scenario() -> None:
        async with serving(Peer(answer=hang)) as port:
            pool = transport()
            with pytest.raises(httpx.ReadTimeout):
                await asyncio.wait_for(post(pool, f"http://127.0.0.1:{port}/", timeout=0.2), 10)
            await pool.aclose()

    asyncio.run(scenario())


def test_a_refused_connection_is_a_connect_error() -> None:
    async def scenario() -> None:
        pool = transport()
        with pytest.raises(httpx.ConnectError):
            await post(pool, f"http://127.0.0.1:{reserved_port()}/")
        await pool.aclose()

    asyncio.run(scenario())


def test_a_response_cut_short_is_a_protocol_error() -> None:
    async def short(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
        await writer.drain()

    async def scenario() -> None:
        async with serving(Peer(answer=short, close_after_answer=True)) as port:
            pool = transport()
            with pytest.raises(httpx.RemoteProtocolError):
                await post(pool, f"http://127.0.0.1:{port}/")
            await pool.aclose()

    asyncio.run(scenario())


def test_a_reset_connection_is_a_read_error() -> None:
    async def reset(request: Request, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST instead of FIN

    async def scenario() -> None:
        async with serving(Peer(answer=reset, close_after_answer=True)) as port:
            pool = transport()
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                await post(pool, f"http://127.0.0.1:{port}/")
            await pool.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_bodies_larger_than_every_buffer_arrive_whole_both_ways(tls: bool, ca: trustme.CA) -> None:
    """4 MiB each way, past the socket buffers and the read limit, over TCP and TLS."""
    big_request = bytes(range(256)) * (BIG // 256)
    big_answer = b"x" * BIG

    async def echo_big(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % BIG + big_answer)
        await writer.drain()

    async def scenario() -> None:
        peer = Peer(answer=echo_big)
        client_context = ssl.create_default_context()
        ca.configure_trust(client_context)
        async with serving(peer, tls=server_context(ca) if tls else None) as port:
            pool = transport(client_context)
            url = f"https://localhost:{port}/" if tls else f"http://127.0.0.1:{port}/"
            response, content = await post(pool, url, big_request)
            await pool.aclose()
        assert response.status_code == 200
        assert content == big_answer
        assert peer.requests[0].body == big_request

    asyncio.run(scenario())


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_a_reader_that_falls_behind_pauses_the_connection_and_then_gets_everything(
    tls: bool, ca: trustme.CA
) -> None:
    """Past `READ_BUFFER_LIMIT` unread bytes the connection stops reading; reading resumes
    it, on a TLS connection too (where the TLS transport, not the socket's, is paused)."""
    answer = bytes(range(256)) * (BIG // 256)

    async def send_big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        server = await asyncio.start_server(
            send_big, "127.0.0.1", 0, ssl=server_context(ca) if tls else None
        )
        port = server.sockets[0].getsockname()[1]
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        if tls:
            client_context = ssl.create_default_context()
            ca.configure_trust(client_context)
            stream = await stream.start_tls(client_context, "localhost", timeout=5)
        buffered = stream._protocol.buffer  # type: ignore[attr-defined]  # white box
        for _ in range(500):  # bounded: until the unread bytes pass the limit
            if len(buffered) > READ_BUFFER_LIMIT:
                break
            await asyncio.sleep(0.01)
        assert len(buffered) > READ_BUFFER_LIMIT  # so reading was paused
        received = bytearray()
        while chunk := await stream.read(65536, timeout=5):
            received += chunk
        await stream.aclose()
        server.close()
        assert received == answer

    asyncio.run(scenario())


# -- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return context


def test_https_to_a_trusted_certificate_is_posted(ca: trustme.CA) -> None:
    async def scenario() -> None:
        peer = Peer()
        async with serving(peer, tls=server_context(ca)) as port:
            client_context = ssl.create_default_context()
            ca.configure_trust(client_context)
            pool = transport(client_context)
            response, content = await post(pool, f"https://localhost:{port}/", b'{"tls":1}')
            ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
            await pool.aclose()
        assert (response.status_code, content) == (200, b"ok")
        assert peer.requests[0].body == b'{"tls":1}'
        assert ssl_object is not None and ssl_object.version() is not None

    asyncio.run(scenario())


def test_https_to_an_untrusted_certificate_is_refused(ca: trustme.CA) -> None:
    async def scenario() -> None:
        peer = Peer()
        async with serving(peer, tls=server_context(ca)) as port:
            pool = transport(ssl.create_default_context())  # the test CA is not trusted
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await post(pool, f"https://localhost:{port}/")
            await pool.aclose()
        assert peer.requests == []

    asyncio.run(scenario())


def test_https_to_a_certificate_for_another_name_is_refused(ca: trustme.CA) -> None:
    async def scenario() -> None:
        async with serving(Peer(), tls=server_context(ca)) as port:
            client_context = ssl.create_default_context()
            ca.configure_trust(client_context)
            pool = transport(client_context)
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await post(pool, f"https://127.0.0.1:{port}/")  # the cert names localhost
            await pool.aclose()

    asyncio.run(scenario())
