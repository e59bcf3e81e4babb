"""SSRF guard: the relay POSTs only to public addresses, unless told otherwise.

A webhook URL is whatever a customer typed, so without a guard the relay could be made to
POST into its own network: 127.0.0.1, 10.x, the cloud metadata service at 169.254.169.254.
Checking the URL when it is saved is not enough, because a name that resolves to a public
address today can resolve to 127.0.0.1 tomorrow, or between two requests (DNS rebinding).
So the check sits where connections are made: `GuardedBackend`, the network backend under
httpx, resolves the name itself, refuses if any address it gets is not public, and connects
to the very address it checked. TLS still verifies the certificate for the hostname (httpcore
sends the URL's host as SNI) and the Host header is unchanged.

`RELAY_ALLOW_PRIVATE_DESTINATIONS=true` turns the guard off (tests, the demo, a relay inside
a private network on purpose).
"""

from __future__ import annotations

import contextlib
import socket
import time
import typing
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import anyio
import httpcore

from relay.delivery.transport.network import AsyncioBackend

IPAddress = IPv4Address | IPv6Address

# RFC 6598 carrier-grade NAT space: not public, and where e.g. Alibaba Cloud's metadata
# service answers (100.100.100.200). Python's is_private leaves it out, is_global does not.
SHARED_ADDRESS_SPACE = IPv4Network("100.64.0.0/10")
# RFC 6052 well-known NAT64 prefix: 64:ff9b::a.b.c.d reaches IPv4 a.b.c.d through a gateway.
NAT64_PREFIX = IPv6Network("64:ff9b::/96")
ALLOW_HINT = "set RELAY_ALLOW_PRIVATE_DESTINATIONS=true to allow"


class DestinationRefused(httpcore.ConnectError):
    """The destination is (or resolves to) an address the relay must not connect to.

    Raised inside httpcore's connection pool, so it is one of httpcore's errors, as the pool
    and httpx expect from a network backend: a failed connect, which httpx hands on as its
    own `httpx.ConnectError` (caused by this one) and `HostClients.send` unwraps again, so
    the dispatcher can log why the destination was refused.
    """

    def __init__(self, host: str, address: IPAddress, reason: str) -> None:
        try:
            literal = ip_address(host) == address
        except ValueError:
            literal = False
        subject = host if literal else f"{host} resolves to {address}, which"
        super().__init__(f"destination refused: {subject} {reason} ({ALLOW_HINT})")


def refusal_reason(address: IPAddress) -> str | None:
    """Why the relay must not connect to `address` ("is a loopback address"), or None when
    it is a public address. IPv6 forms that carry an IPv4 address (mapped, 6to4, NAT64) are
    judged by that IPv4 address, so ::ffff:127.0.0.1 is loopback."""
    checked: IPAddress = address
    if isinstance(address, IPv6Address):
        checked = _embedded_ipv4(address) or address
    if checked.is_unspecified:
        return "is an unspecified address"
    if checked.is_loopback:
        return "is a loopback address"
    if checked.is_link_local:
        return "is a link-local address (where cloud metadata services answer)"
    if checked.is_multicast:
        return "is a multicast address"
    if checked in SHARED_ADDRESS_SPACE:
        return "is in the shared (carrier-grade NAT) address space"
    if checked.is_reserved:
        return "is a reserved address"
    if checked.is_private or (isinstance(checked, IPv6Address) and checked.is_site_local):
        return "is a private address"
    if not checked.is_global:
        return "is not a globally routable address"
    return None


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_PREFIX:
        return IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


async def resolve_name(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to, in the system resolver's order of preference."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ip_address(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, except that it resolves names itself and connects only
    to addresses that `refusal_reason` lets through: the check and the connection use the
    same address, on every new connection (every redirect hop included)."""

    def __init__(self) -> None:
        self._inner = AsyncioBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = None if timeout is None else time.monotonic() + timeout
        addresses = await _resolve(host, port, timeout)
        for address in addresses:
            reason = refusal_reason(address)
            if reason is not None:
                raise DestinationRefused(host, address, reason)

        async def connect(address: IPAddress) -> httpcore.AsyncNetworkStream:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            return await self._inner.connect_tcp(
                str(address),
                port,
                timeout=remaining,
                local_address=local_address,
                socket_options=socket_options,
            )

        # One address after the other while the connect timeout lasts; a refused or
        # unreachable one moves on to the next, the last one's error is the answer.
        for address in addresses[:-1]:
            with contextlib.suppress(httpcore.ConnectError):
                return await connect(address)
        return await connect(addresses[-1])

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _resolve(host: str, port: int, timeout: float | None) -> list[IPAddress]:
    """`host` as addresses; errors as httpcore's, as if the connection itself had failed."""
    with contextlib.suppress(ValueError):
        return [ip_address(host)]  # an address in the URL: nothing to resolve
    try:
        with anyio.fail_after(timeout):
            addresses = await resolve_name(host, port)
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"resolving {host} took over {timeout:g} s") from exc
    except OSError as exc:
        raise httpcore.ConnectError(str(exc)) from exc
    if not addresses:
        raise httpcore.ConnectError(f"{host} resolves to no address")
    return addresses
