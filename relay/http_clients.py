"""One HTTP client per destination host.

httpcore's connection pool re-examines every idle connection on each request, so one pool of
64 connections spent most of the dispatcher's CPU (measured: per-host clients doubled POSTs
per second). A small pool per host also enforces the per-host bound at the socket level.
"""

from __future__ import annotations

import httpx


class HostClients:
    def __init__(self, *, connections_per_host: int) -> None:
        self._limits = httpx.Limits(
            max_connections=connections_per_host,
            max_keepalive_connections=connections_per_host,
        )
        self._clients: dict[str, httpx.AsyncClient] = {}

    def for_host(self, host: str) -> httpx.AsyncClient:
        """The client for one destination (`Delivery.host`: scheme, host and port), made on
        first use."""
        client = self._clients.get(host)
        if client is None:
            client = httpx.AsyncClient(follow_redirects=False, limits=self._limits)
            self._clients[host] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
