"""The SSRF guard: which addresses are refused, and that the dispatcher refuses them when it
connects (names, redirects and rebinding included), logging a failed attempt that says why.

Every test here can only ever connect to 127.0.0.1 and resolve only the names it fakes (plus
`localhost`): the `connections` and `dns` fixtures stop anything else before it leaves the
machine, so a broken guard fails these tests instead of sending packets to 10.x.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from ipaddress import IPv4Address, ip_address
from typing import Any

import httpcore
import httpx
import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import Engine

from relay.delivery.transport import guard
from relay.delivery.transport.clients import HostClients
from relay.delivery.transport.guard import (
    DestinationRefused,
    GuardedBackend,
    IPAddress,
    refusal_reason,
)
from relay.delivery.transport.network import AsyncioBackend, PooledTransport
from relay.demo.local_server import Receive, Scope, Send, read_body
from relay.settings import RelaySettings
from tests.relay.conftest import Parts, RunningReceiver, add_webhook
from tests.relay.test_dispatcher import REAL_TIME_MODULES, START, accept, log_records, run_due
from tests.support.servers import ThreadedServer

HINT = "(set RELAY_ALLOW_PRIVATE_DESTINATIONS=true to allow)"
REAL_NAMES = {"localhost", "127.1"}  # answered from /etc/hosts or parsed as numbers: no DNS


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "is a loopback address"),
        ("10.0.0.5", "is a private address"),
        ("172.16.0.1", "is a private address"),
        ("192.168.1.1", "is a private address"),
        ("169.254.169.254", "is a link-local address (where cloud metadata services answer)"),
        ("::1", "is a loopback address"),
        ("fe80::1", "is a link-local address (where cloud metadata services answer)"),
        ("fec0::1", "is a private address"),  # deprecated site-local
        ("fd00::1", "is a private address"),  # unique local
        ("ff02::1", "is a multicast address"),
        ("224.0.0.1", "is a multicast address"),
        ("0.0.0.0", "is an unspecified address"),
        ("::", "is an unspecified address"),
        ("240.0.0.1", "is a reserved address"),
        ("255.255.255.255", "is a reserved address"),
        ("192.0.2.1", "is a private address"),  # documentation range
        # Not public, and home of some clouds' metadata services (100.100.100.200).
        ("100.64.0.1", "is in the shared (carrier-grade NAT) address space"),
        # IPv6 forms that carry an IPv4 address are judged by that address.
        ("::ffff:127.0.0.1", "is a loopback address"),
        (
            "::ffff:169.254.169.254",
            "is a link-local address (where cloud metadata services answer)",
        ),
        ("64:ff9b::a00:5", "is a private address"),  # NAT64 of 10.0.0.5
        ("2002:7f00:1::", "is a loopback address"),  # 6to4 of 127.0.0.1
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8: how IPv6-only hosts reach it
        ("::ffff:8.8.8.8", None),
    ],
)
def test_which_addresses_are_refused(address: str, reason: str | None) -> None:
    assert refusal_reason(ip_address(address)) == reason


# -- the guard in the dispatcher ----------------------------------------------------------


@dataclass
class FakeDns:
    """Answers for names; `localhost` and numeric spellings go to the real resolver."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    real = guard.resolve_name

    async def resolve(host: str, port: int) -> list[IPAddress]:
        fake.asked.append(host)
        if host in REAL_NAMES:
            return await real(host, port)
        if host not in fake.answers:
            raise OSError(f"test resolver: no answer for {host}")
        return [ip_address(a) for a in fake.answers[host]]

    monkeypatch.setattr(guard, "resolve_name", resolve)
    return fake


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address a connection is opened to; anything but 127.0.0.1 is stopped here."""
    opened: list[str] = []
    real = AsyncioBackend.connect_tcp

    async def connect_tcp(
        self: AsyncioBackend, host: str, port: int, **options: Any
    ) -> httpcore.AsyncNetworkStream:
        opened.append(host)
        if host != "127.0.0.1":
            raise httpcore.ConnectError(f"test tripwire: no connection to {host}")
        return await real(self, host, port, **options)

    monkeypatch.setattr(AsyncioBackend, "connect_tcp", connect_tcp)
    return opened


@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.1 (and only it) passes the guard, standing in for a public receiver, so a test
    can reach its local receiver through the guard and see what the guard does next."""
    real = guard.refusal_reason
    loopback = IPv4Address("127.0.0.1")
    monkeypatch.setattr(
        guard,
        "refusal_reason",
        lambda address: None if address == loopback else real(address),
    )


def dispatch(parts: Parts, *, allow_private: bool = False, follow_redirects: bool = False) -> int:
    """One dispatcher pass over what is due, with fresh clients (so fresh connections)."""
    clients = HostClients(
        connections_per_host=2,
        allow_private_destinations=allow_private,
        follow_redirects=follow_redirects,
    )
    return run_due(parts, clients=clients)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:{port}/ok", "127.0.0.1 is a loopback address"),
        ("http://localhost:{port}/ok", "localhost resolves to 127.0.0.1, which is a loopback"),
        ("http://127.1:{port}/ok", "127.1 resolves to 127.0.0.1, which is a loopback address"),
        ("http://[::1]:{port}/ok", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]:{port}/ok", "::ffff:127.0.0.1 is a loopback address"),
        ("http://10.0.0.5:{port}/ok", "10.0.0.5 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ],
)
def test_a_refused_destination_is_logged_as_failed_and_never_contacted(
    url: str,
    why: str,
    parts: Parts,
    pg_engine: Engine,
    receiver: RunningReceiver,
    connections: list[str],
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    add_webhook(pg_engine, parts.company, url.format(port=port))
    accept(parts)
    assert dispatch(parts) == 1
    [record] = log_records(parts)
    assert (record["status"], record["response_status"]) == ("failed", None)
    error = str(record["error"])
    assert error.startswith(f"destination refused: {why}")
    assert error.endswith(HINT)
    assert connections == []  # refused before any connection was opened
    assert receiver.receiver.requests == []
    assert parts.inbox.queue.count() == 1  # retried like any failed connect: DNS may change


def test_with_private_destinations_allowed_the_local_receiver_gets_the_post(
    parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    add_webhook(pg_engine, parts.company, f"{receiver.url}/ok")
    accept(parts)
    dispatch(parts, allow_private=True)
    assert len(receiver.receiver.on("/ok")) == 1
    [record] = log_records(parts)
    assert (record["status"], record["response_status"], record["error"]) == ("success", 200, None)


def test_a_name_with_any_non_public_address_is_refused(
    dns: FakeDns, connections: list[str]
) -> None:
    dns.answers["mixed.test"] = ["8.8.8.8", "127.0.0.1"]
    with pytest.raises(DestinationRefused) as refused:
        asyncio.run(GuardedBackend().connect_tcp("mixed.test", 443, timeout=5))
    assert "mixed.test resolves to 127.0.0.1, which is a loopback address" in str(refused.value)
    assert connections == []


def test_a_name_that_does_not_resolve_fails_like_a_connect_error(dns: FakeDns) -> None:
    with pytest.raises(httpcore.ConnectError, match=r"no answer for nowhere\.test"):
        asyncio.run(GuardedBackend().connect_tcp("nowhere.test", 443, timeout=5))


# -- redirects ------------------------------------------------------------------------------


@dataclass
class Redirector:
    """Answers every request with `status` and a Location header; counts requests."""

    status: int
    location: str
    requests: int = 0
    cookie: bytes | None = None  # a Set-Cookie header to send along

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        self.requests += 1
        headers = [(b"location", self.location.encode())]
        if self.cookie is not None:
            headers.append((b"set-cookie", self.cookie))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def redirector() -> Iterator[tuple[Redirector, str]]:
    app = Redirector(302, "")
    with ThreadedServer(app) as server:
        yield app, server.url


def test_redirects_are_not_followed_by_default(
    parts: Parts,
    pg_engine: Engine,
    receiver: RunningReceiver,
    redirector: tuple[Redirector, str],
) -> None:
    app, url = redirector
    app.location = f"{receiver.url}/ok"
    add_webhook(pg_engine, parts.company, f"{url}/moved")
    accept(parts)
    dispatch(parts, allow_private=True)  # even with the guard off
    [record] = log_records(parts)
    assert (record["status"], record["response_status"], record["error"]) == (
        "failed",
        302,
        "HTTP 302",
    )
    assert receiver.receiver.requests == []


@pytest.mark.usefixtures("loopback_is_public")
@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://[::1]:{port}/ok", "::1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://metadata.test/computeMetadata/v1/", "metadata.test resolves to 169.254.169.254"),
    ],
)
def test_a_followed_redirect_to_a_refused_destination_is_refused(
    location: str,
    why: str,
    parts: Parts,
    pg_engine: Engine,
    receiver: RunningReceiver,
    redirector: tuple[Redirector, str],
    dns: FakeDns,
    connections: list[str],
) -> None:
    dns.answers["metadata.test"] = ["169.254.169.254"]
    app, url = redirector
    app.status, app.location = 307, location.format(port=receiver.url.rsplit(":", 1)[1])
    add_webhook(pg_engine, parts.company, f"{url}/moved")
    accept(parts)
    dispatch(parts, follow_redirects=True)
    assert app.requests == 1  # the first hop passed the guard
    [record] = log_records(parts)
    assert (record["status"], record["response_status"]) == ("failed", None)
    assert str(record["error"]).startswith(f"destination refused: {why}")
    assert connections == ["127.0.0.1"]  # the redirect's target was never connected to
    assert receiver.receiver.requests == []


def test_a_followed_redirect_reaches_an_allowed_destination(
    parts: Parts,
    pg_engine: Engine,
    receiver: RunningReceiver,
    redirector: tuple[Redirector, str],
) -> None:
    app, url = redirector
    app.status, app.location = 307, f"{receiver.url}/ok"
    add_webhook(pg_engine, parts.company, f"{url}/moved")
    accept(parts)
    dispatch(parts, allow_private=True, follow_redirects=True)
    [post] = receiver.receiver.on("/ok")
    assert post.json()["event_type"] == "call-history-was-created"  # 307 re-POSTs the body
    assert log_records(parts)[0]["status"] == "success"


# -- DNS rebinding --------------------------------------------------------------------------


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(START, ignore=REAL_TIME_MODULES) as clock:
        yield clock


@pytest.mark.usefixtures("loopback_is_public")
def test_a_name_that_rebinds_to_a_private_address_is_refused_at_the_next_connection(
    frozen: FrozenDateTimeFactory,
    parts: Parts,
    pg_engine: Engine,
    receiver: RunningReceiver,
    dns: FakeDns,
    connections: list[str],
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    add_webhook(pg_engine, parts.company, f"http://hooks.test:{port}/status/503")
    accept(parts)
    dns.answers["hooks.test"] = ["127.0.0.1"]  # "public" when first looked up
    dispatch(parts)
    [post] = receiver.receiver.requests
    assert post.headers["host"] == f"hooks.test:{port}"  # the name kept, the checked IP used
    dns.answers["hooks.test"] = ["169.254.169.254"]  # then it rebinds to the metadata service
    frozen.tick(timedelta(seconds=5))
    assert dispatch(parts) == 1
    first, second = log_records(parts)
    assert (first["status"], first["response_status"]) == ("failed", 503)
    assert str(second["error"]).startswith(
        "destination refused: hooks.test resolves to 169.254.169.254, which is a link-local"
    )
    assert dns.asked == ["hooks.test", "hooks.test"]  # looked up at each connection
    assert connections == ["127.0.0.1"]
    assert len(receiver.receiver.requests) == 1


# -- settings -------------------------------------------------------------------------------


def test_the_guard_is_on_unless_the_environment_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RELAY_ALLOW_PRIVATE_DESTINATIONS", raising=False)
    monkeypatch.delenv("RELAY_FOLLOW_REDIRECTS", raising=False)
    assert RelaySettings().allow_private_destinations is False
    assert RelaySettings().follow_redirects is False
    monkeypatch.setenv("RELAY_ALLOW_PRIVATE_DESTINATIONS", "true")
    monkeypatch.setenv("RELAY_FOLLOW_REDIRECTS", "true")
    settings = RelaySettings()
    assert (settings.allow_private_destinations, settings.follow_redirects) == (True, True)


def test_clients_from_settings_are_guarded_unless_allowed(
    monkeypatch: pytest.MonkeyPatch, receiver: RunningReceiver
) -> None:
    monkeypatch.delenv("RELAY_ALLOW_PRIVATE_DESTINATIONS", raising=False)

    async def post(settings: RelaySettings) -> int | str:
        clients = HostClients.from_settings(settings)
        try:
            async with clients.send(receiver.url, httpx.Request("POST", f"{receiver.url}/ok")) as r:
                return r.status_code
        except DestinationRefused:
            return "refused"
        finally:
            await clients.aclose()

    assert asyncio.run(post(RelaySettings())) == "refused"
    assert asyncio.run(post(RelaySettings(allow_private_destinations=True))) == 200


# -- cookies --------------------------------------------------------------------------------


def dispatch_over_one_connection(parts: Parts, *, follow_redirects: bool) -> None:
    """Everything due, POSTed one after the other over one connection per host."""
    clients = HostClients(
        connections_per_host=1, allow_private_destinations=True, follow_redirects=follow_redirects
    )
    run_due(parts, clients=clients)


@pytest.mark.parametrize("follow_redirects", [False, True])
def test_a_cookie_a_receiver_sets_is_not_sent_with_later_posts(
    follow_redirects: bool, parts: Parts, pg_engine: Engine, receiver: RunningReceiver
) -> None:
    """Deliveries are stateless: the next POST to that host, maybe another company's,
    carries no cookie."""
    add_webhook(pg_engine, parts.company, f"{receiver.url}/set-cookie")
    for _ in range(3):
        accept(parts)
    dispatch_over_one_connection(parts, follow_redirects=follow_redirects)
    posts = receiver.receiver.on("/set-cookie")
    assert [post.headers.get("cookie") for post in posts] == [None, None, None]


def test_a_cookie_set_with_a_redirect_is_not_sent_to_its_target(
    parts: Parts,
    pg_engine: Engine,
    receiver: RunningReceiver,
    redirector: tuple[Redirector, str],
) -> None:
    app, url = redirector
    app.status, app.location, app.cookie = 307, f"{receiver.url}/ok", b"session=abc123; Path=/"
    add_webhook(pg_engine, parts.company, f"{url}/moved")
    accept(parts)
    accept(parts)
    dispatch_over_one_connection(parts, follow_redirects=True)
    posts = receiver.receiver.on("/ok")
    assert len(posts) == 2
    assert [post.headers.get("cookie") for post in posts] == [None, None]


# -- the refusal as an error of the network layer ---------------------------------------------


def test_the_refusal_is_a_connect_error_of_httpcore_as_a_backend_must_raise(
    connections: list[str],
) -> None:
    with pytest.raises(httpcore.ConnectError) as refused:
        asyncio.run(GuardedBackend().connect_tcp("10.0.0.5", 443, timeout=5))
    assert isinstance(refused.value, DestinationRefused)
    assert connections == []


def test_httpx_maps_the_refusal_like_any_failed_connect_and_the_clients_unwrap_it(
    connections: list[str],
) -> None:
    """Under httpx the refusal arrives as httpx's own ConnectError, caused by it; the relay's
    one way of sending hands the refusal itself to the dispatcher."""
    url = "http://10.0.0.5:8080/hook"

    async def through_httpx() -> BaseException:
        transport = PooledTransport(
            limits=httpx.Limits(max_connections=1),
            ssl_context=ssl.create_default_context(),
            backend=GuardedBackend(),
        )
        try:
            await transport.handle_async_request(httpx.Request("POST", url))
        except httpx.ConnectError as exc:
            return exc
        finally:
            await transport.aclose()
        raise AssertionError("not refused")

    async def through_the_clients() -> BaseException:
        clients = HostClients(connections_per_host=1, allow_private_destinations=False)
        try:
            async with clients.send("http://10.0.0.5:8080", httpx.Request("POST", url)):
                pass
        except DestinationRefused as exc:
            return exc
        finally:
            await clients.aclose()
        raise AssertionError("not refused")

    mapped = asyncio.run(through_httpx())
    assert type(mapped) is httpx.ConnectError
    assert isinstance(mapped.__cause__, DestinationRefused)
    assert (
        str(mapped)
        == str(mapped.__cause__)
        == f"destination refused: 10.0.0.5 is a private address {HINT}"
    )
    refused = asyncio.run(through_the_clients())
    assert str(refused).startswith("destination refused: 10.0.0.5 is a private address")
    assert connections == []
