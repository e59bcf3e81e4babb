"""`PooledTransport` (relay/delivery/transport/network.py) replaces a private attribute of
httpx's transport, `_pool`, with a pool over the relay's own network backend, under which the
SSRF guard sits. A release may rename it, so httpx and httpcore are pinned in pyproject.toml
to the versions this was checked against; these tests fail when the installed versions leave
that range, or when httpx no longer keeps and sends through `_pool`."""

from __future__ import annotations

import asyncio
import ssl
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from packaging.requirements import Requirement

from relay.delivery.transport.network import AsyncioBackend, PooledTransport
from tests.support.receivers import Receiver, ThreadedServer

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
LIMITS = httpx.Limits(max_connections=1, max_keepalive_connections=1)


def pinned(name: str) -> Requirement:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    [requirement] = [r for r in map(Requirement, dependencies) if r.name == name]
    return requirement


@pytest.mark.parametrize("name", ["httpx", "httpcore"])
def test_the_installed_version_is_within_the_pinned_range(name: str) -> None:
    specifier = pinned(name).specifier
    assert any(spec.operator in ("<", "<=", "==", "~=") for spec in specifier), (
        f"{name} is pinned without an upper bound: {specifier}"
    )
    installed = version(name)
    assert specifier.contains(installed), f"{name} {installed} is outside the pin {specifier}"


class CountingBackend(AsyncioBackend):
    """The relay's backend, counting the connections it opens."""

    def __init__(self) -> None:
        super().__init__()
        self.connects = 0

    async def connect_tcp(
        self, host: str, port: int, *args: Any, **options: Any
    ) -> httpcore.AsyncNetworkStream:
        self.connects += 1
        return await super().connect_tcp(host, port, *args, **options)


def test_httpx_keeps_its_pool_where_the_relay_replaces_it() -> None:
    assert isinstance(httpx.AsyncHTTPTransport()._pool, httpcore.AsyncConnectionPool)


def test_requests_go_through_the_backend_put_under_the_transport() -> None:
    backend = CountingBackend()

    async def post(url: str) -> int:
        transport = PooledTransport(
            limits=LIMITS, ssl_context=ssl.create_default_context(), backend=backend
        )
        try:
            response = await transport.handle_async_request(httpx.Request("POST", url))
            await response.aclose()
            return response.status_code
        finally:
            await transport.aclose()

    receiver = Receiver()
    with ThreadedServer(receiver) as server:
        assert asyncio.run(post(f"{server.url}/ok")) == 200
    assert backend.connects == 1
    assert len(receiver.on("/ok")) == 1


def test_a_transport_without_the_pool_attribute_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A future httpx that keeps its pool elsewhere (simulated: its constructor sets
    nothing) must stop the relay, not send around the guard."""
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "__init__", lambda self, **_: None)
    with pytest.raises(RuntimeError, match="no longer keeps its connection pool in `_pool`"):
        PooledTransport(
            limits=LIMITS, ssl_context=ssl.create_default_context(), backend=AsyncioBackend()
        )
