"""One HTTP client per destination host.

httpcore's connection pool re-examines every idle connection on each request, so one pool of
64 connections spent most of the dispatcher's CPU (measured: per-host clients doubled POSTs
per second). A small pool per host also enforces the per-host bound at the socket level.

Every client connects directly, through the SSRF guard unless private destinations are
allowed (`relay/destinations.py`); proxies from the environment (HTTP_PROXY ...) are not
used, since a proxy would resolve the names where the guard cannot see them.
"""

from __future__ import annotations

import httpx

from relay.destinations import GuardedTransport
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
        self._clients: dict[str, httpx.AsyncClient] = {}

    @classmethod
    def from_settings(cls, settings: RelaySettings) -> HostClients:
        return cls(
            connections_per_host=settings.max_per_host,
            allow_private_destinations=settings.allow_private_destinations,
            follow_redirects=settings.follow_redirects,
        )

    def for_host(self, host: str) -> httpx.AsyncClient:
        """The client for one destination (`Delivery.host`: scheme, host and port), made on
        first use."""
        client = self._clients.get(host)
        if client is None:
            transport = (
                httpx.AsyncHTTPTransport(verify=self._ssl_context, limits=self._limits)
                if self._allow_private
                else GuardedTransport(limits=self._limits, ssl_context=self._ssl_context)
            )
            client = httpx.AsyncClient(
                transport=transport,
                follow_redirects=self._follow_redirects,
                max_redirects=MAX_REDIRECTS,
            )
            self._clients[host] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
