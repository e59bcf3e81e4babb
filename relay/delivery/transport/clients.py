"""One connection pool per destination host, and the one way the dispatcher sends a POST.

httpcore's connection pool re-examines every idle connection on each request, so one pool of
64 connections spent most of the dispatcher's CPU (measured: per-host pools doubled POSTs
per second). A small pool per host also enforces the per-host bound at the socket level.

Without redirects to follow (the default), a request goes straight to the host's transport:
`httpx.AsyncClient` adds nothing the dispatcher uses (it builds its own requests) but its
cookie jar and request merging, which were a fifth of the dispatcher's CPU (py-spy,
2026-12-01). With redirects on, an `AsyncClient` over the same transport follows them,
with a cookie jar that keeps nothing. Either way deliveries are stateless: a cookie one
company's receiver sets is never sent with another company's POST to the same host.

Every pool connects directly, through the SSRF guard unless private destinations are
allowed (`guard.py`); proxies from the environment (HTTP_PROXY ...) are not
used, since a proxy would resolve the names where the guard cannot see them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from relay.delivery.transport.guard import DestinationRefused, GuardedBackend
from relay.delivery.transport.network import AsyncioBackend, PooledTransport
from relay.settings import RelaySettings

MAX_REDIRECTS = 5  # when following redirects at all (RELAY_FOLLOW_REDIRECTS)


class HostClients:
    def __init__(
        self,
        *,
        connections_per_host: int,
        allow_private_destinations: bool,
        follow_redirects: bool = False,
    ) -> None:
        self._limits = httpx.Limits(
            max_connections=connections_per_host,
            max_keepalive_connections=connections_per_host,
        )
        self._allow_private = allow_private_destinations
        self._follow_redirects = follow_redirects
        self._ssl_context = httpx.create_ssl_context()  # loaded once, shared by every host
        self._transports: dict[str, PooledTransport] = {}
        self._clients: dict[str, httpx.AsyncClient] = {}

    @classmethod
    def from_settings(cls, settings: RelaySettings) -> HostClients:
        return cls(
            connections_per_host=settings.max_per_host,
            allow_private_destinations=settings.allow_private_destinations,
            follow_redirects=settings.follow_redirects,
        )

    @contextlib.asynccontextmanager
    async def send(self, host: str, request: httpx.Request) -> AsyncIterator[httpx.Response]:
        """The response to `request`, its body still to be read, closed on leaving.

        `host` is `Delivery.host` (scheme, host and port); the request's timeout is taken
        from its `timeout` extension, as httpx's transports do. Raises httpx's errors, or
        `DestinationRefused` when the SSRF guard refused to connect (httpx wraps it in its
        `ConnectError`; unwrapped here, it says which address and why).
        """
        try:
            if self._follow_redirects:
                response = await self._client(host).send(request, stream=True)
            else:
                response = await self._transport(host).handle_async_request(request)
                response.request = request
        except httpx.ConnectError as exc:
            if isinstance(exc.__cause__, DestinationRefused):
                raise exc.__cause__ from None
            raise
        try:
            yield response
        finally:
            await response.aclose()

    def _transport(self, host: str) -> PooledTransport:
        """The pool for one destination, made on first use."""
        transport = self._transports.get(host)
        if transport is None:
            transport = PooledTransport(
                limits=self._limits,
                ssl_context=self._ssl_context,
                backend=AsyncioBackend() if self._allow_private else GuardedBackend(),
            )
            self._transports[host] = transport
        return transport

    def _client(self, host: str) -> httpx.AsyncClient:
        client = self._clients.get(host)
        if client is None:
            client = httpx.AsyncClient(
                transport=self._transport(host),
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            )
            self._clients[host] = client
        return client

    async def aclose(self) -> None:
        transports, self._transports, self._clients = list(self._transports.values()), {}, {}
        for transport in transports:  # a client's transport is one of these
            await transport.aclose()
