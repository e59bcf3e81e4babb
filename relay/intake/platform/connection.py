"""One socket.io connection to the platform: open it, hand on its events in order, close it
whole (client, websocket and aiohttp session), whatever happened to it.

python-socketio's own reconnection is off (`reconnection=False`): the caller owns the retry
loop, so that every attempt is counted and backs off as the caller decides, and every
attempt's client is disposed of before the next one exists.

Events of one connection are handed on one at a time, in arrival order, and the next frame
is not read until the handler returned: engine.io normally runs each message's handler as a
task of its own, so a slow handler would see events out of order and tasks pile up without
bound while it is slow. `_InOrderEngineIO` runs them inline in the read loop instead; a slow
handler then stops the reading, and TCP's flow control pushes back on the platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import engineio
import socketio

from relay.ops import redaction

log = logging.getLogger(__name__)

EventHandler = Callable[[str, Any], Awaitable[None]]
"""Awaited for each event of the connection, in arrival order: (event name, payload)."""

DISPOSE_SECONDS = 5.0
"""How long a polite disconnect may take before the client is torn down by force."""

_QUERY = re.compile(r"\?[^\s'\"<>)\]]*")


class ConnectFailed(Exception):
    """A connection attempt that did not succeed; `detail` is safe to log (no token)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Refused(ConnectFailed):
    """The platform answered and refused the token (its socket.io `connect` said no)."""


class Unreachable(ConnectFailed):
    """No answer to be had: TCP refused, a timeout, a broken handshake, the server gone."""


def safe_text(text: str) -> str:
    """`text` with every URL's query string cut off and every registered secret masked: the
    token travels in the query, and library messages like to quote URLs."""
    return redaction.redact(_QUERY.sub("", text))


def stream_url(url: str, token: str) -> str:
    """The URL a company's connection opens: the platform authenticates by `?token=`."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}token={quote(token, safe='')}"


class _InOrderEngineIO(engineio.AsyncClient):  # type: ignore[misc]
    """engine.io client whose message handlers run inline in the read loop (see module doc)."""

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message":
            kwargs["run_async"] = False
        return await super()._trigger_event(event, *args, **kwargs)

    async def disconnect(self, abort: bool = False, reason: Any = None) -> None:
        # A server's socket.io DISCONNECT is now handled inside the read loop, and a polite
        # disconnect awaits the read loop: it cannot await itself (the library does the same
        # for engine.io's CLOSE packet, which it also handles in the read loop).
        if asyncio.current_task() is self.read_loop_task:
            abort = True
        await super().disconnect(abort=abort, reason=reason)


class _InOrderClient(socketio.AsyncClient):  # type: ignore[misc]
    def _engineio_client_class(self) -> type[engineio.AsyncClient]:
        return _InOrderEngineIO


class PlatformConnection:
    """An established connection. `closed()` returns when it ends; `close()` ends it."""

    def __init__(
        self, client: socketio.AsyncClient, session: aiohttp.ClientSession, ended: asyncio.Event
    ) -> None:
        self._client = client
        self._session = session
        self._ended = ended
        self.reason = "connection lost"

    async def closed(self) -> str:
        """Wait until the connection ends (server stopped, dropped, network gone): why."""
        read_loop = self._client.eio.read_loop_task
        waits = [asyncio.ensure_future(self._ended.wait())]
        if read_loop is not None:
            waits.append(read_loop)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waits[0].cancel()
        return self.reason

    async def close(self) -> None:
        await dispose(self._client, self._session)


async def open_connection(
    url: str, token: str, on_event: EventHandler, *, timeout: float
) -> PlatformConnection:
    """Connect to `url` as the company of `token`, websocket only, within `timeout` seconds.

    Raises `Refused` if the platform refused the token, `Unreachable` for everything else;
    either way, and on cancellation, nothing of the attempt is left open.
    """
    redaction.register(token)
    # The session is ours, so that we close it: after a failed websocket handshake the
    # library leaves its own open.
    session = aiohttp.ClientSession()
    try:
        client = _InOrderClient(
            reconnection=False,
            logger=False,  # both loggers print the URL, and so the token
            engineio_logger=False,
            handle_sigint=False,
            http_session=session,
        )
    except BaseException:
        await session.close()
        raise
    refusals: list[Any] = []
    ended = asyncio.Event()
    connection = PlatformConnection(client, session, ended)

    async def on_connect_error(data: Any = None) -> None:
        refusals.append(data)

    async def on_disconnect(reason: Any = None) -> None:
        connection.reason = (
            f"connection lost: {safe_text(str(reason))}" if reason else "connection lost"
        )
        ended.set()

    async def on_any(event: str, *args: Any) -> None:
        await on_event(event, args[0] if len(args) == 1 else (list(args) or None))

    client.on("connect_error", on_connect_error)
    client.on("disconnect", on_disconnect)
    client.on("*", on_any)
    try:
        async with asyncio.timeout(timeout * 1.5):  # TCP + websocket, then the namespace
            await client.connect(
                stream_url(url, token), transports=["websocket"], wait_timeout=timeout
            )
    except BaseException as exc:
        refused = "/" in client.failed_namespaces
        await dispose(client, session)
        if not isinstance(exc, Exception):  # cancelled: closed all the same
            raise
        if refused:
            raise Refused(_refusal_message(refusals)) from None
        raise Unreachable(_failure_text(exc, timeout)) from None
    return connection


async def dispose(client: socketio.AsyncClient, session: aiohttp.ClientSession) -> None:
    """Disconnect `client` politely if it can, then by force; close its aiohttp session.

    Idempotent, and bounded in time: a handler that never returns cannot hold it up. A
    caller cancelled meanwhile (a stream being closed) still sees it finish, then the cancel.
    """
    cleanup = asyncio.ensure_future(_dispose_now(client, session))
    try:
        await asyncio.shield(cleanup)
    except asyncio.CancelledError:
        await asyncio.wait([cleanup])
        raise


async def _dispose_now(client: socketio.AsyncClient, session: aiohttp.ClientSession) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.disconnect(), DISPOSE_SECONDS)
    eio = client.eio
    loops = [t for t in (eio.read_loop_task, eio.write_loop_task) if t is not None]
    for task in loops:
        task.cancel()
    await session.close()  # closes the connector: every socket the attempt opened
    if loops:
        await asyncio.wait(loops, timeout=DISPOSE_SECONDS)


def _refusal_message(refusals: list[Any]) -> str:
    """The platform's own words for a refusal (`{"message": ...}`), made safe to log."""
    for data in refusals:
        if isinstance(data, dict) and data.get("message"):
            return safe_text(str(data["message"]))
        if isinstance(data, str) and data:
            return safe_text(data)
    return "connection refused by the platform"


def _failure_text(exc: BaseException, timeout: float) -> str:
    """What went wrong, from the first cause that says more than the library's own
    'Connection error' (aiohttp's, typically: 'Cannot connect to host ...')."""
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    if any(isinstance(link, TimeoutError) for link in chain):
        return f"no connection within {timeout:g} s"
    for link in chain:
        text = str(link)
        if text and text != "Connection error":
            return safe_text(f"{type(link).__name__}: {text}")
    return safe_text(str(exc) or type(exc).__name__)
