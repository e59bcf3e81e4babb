"""A query whose connection went silent (a proxy that accepted the bytes and stopped
answering) fails within the checkout bound instead of hanging the drain for good."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from relay.db.engine import make_engine
from tests.support.tcp_proxy import TcpProxy

TIMEOUT = 1.0


def test_a_silent_connection_is_cut_after_the_checkout_bound(pg_url: str) -> None:
    port = make_url(pg_url).port
    assert port is not None
    with TcpProxy(port) as proxy:
        proxied = make_url(pg_url).set(port=proxy.port).render_as_string(hide_password=False)
        engine = make_engine(proxied, timeout_seconds=TIMEOUT)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            proxy.set_mode("blackhole")  # the pooled connection is reused, and hangs
            started = time.monotonic()
            with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_sleep(0)"))
            waited = time.monotonic() - started
            assert 1.5 * TIMEOUT <= waited < 1.5 * TIMEOUT + 3, waited  # not forever
            proxy.set_mode("forward")
            with engine.connect() as conn:  # the pool recovers on a fresh connection
                assert conn.execute(sa.text("SELECT 2")).scalar() == 2
        finally:
            engine.dispose()


def test_a_quick_checkout_is_left_alone(pg_url: str) -> None:
    engine = make_engine(pg_url, timeout_seconds=TIMEOUT)
    try:
        for _ in range(4):  # 2.4 s in all: each checkout is disarmed when it returns
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_sleep(0.6)"))
    finally:
        engine.dispose()
