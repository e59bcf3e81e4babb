"""The test side's one-off HTTP calls to relays and receivers on 127.0.0.1.

`httpx.get`, `httpx.post` and `httpx.request` build a client per call, and each client builds
and loads a TLS context of its own: about 20 ms of CPU per call (measured 2026-12-04: 19 ms,
against 0.1 ms with a context given), for plain HTTP that never uses it. Thousands of such
calls across the suite added up to tens of CPU-seconds on a 2-core machine. These take one
context, built once; a call still makes its own connection, as before, so a relay killed
and restarted on the same port never meets a stale pooled one.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

TLS = ssl.create_default_context()
"""Given to every client the tests make, instead of one loaded per client."""


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, url, verify=TLS, **kwargs)


def get(url: str, **kwargs: Any) -> httpx.Response:
    return request("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return request("POST", url, **kwargs)
