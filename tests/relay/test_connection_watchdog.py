"""A query whose connection went silent (a proxy that accepted the bytes and stopped
answering) fails within the checkout bound instead of hanging the drain for good."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from relay.db.engine import make_engine
from relay.db.watchdog import ConnectionWatchdog
from tests.faults.harness import TcpProxy

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


# -- disarming: a closed connection's descriptor must not be shut down later ------------------


@pytest.fixture
def watched(pg_url: str) -> Iterator[tuple[sa.Engine, ConnectionWatchdog]]:
    """A plain engine on the suite's PostgreSQL, watched by a watchdog the test can read."""
    engine = sa.create_engine(pg_url, pool_size=1, max_overflow=0)
    watchdog = ConnectionWatchdog(limit_seconds=60)
    watchdog.watch(engine)
    yield engine, watchdog
    engine.dispose()


def test_an_invalidated_connection_is_disarmed_before_its_socket_is_closed(
    watched: tuple[sa.Engine, ConnectionWatchdog],
) -> None:
    engine, watchdog = watched
    armed_at_close: list[int] = []
    event.listen(engine, "close", lambda _dbapi, _record: armed_at_close.append(watchdog.armed))
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
        assert watchdog.armed == 1
        conn.invalidate()  # closes the socket, then checks the connection in
    assert armed_at_close == [0]  # its descriptor was no longer watched when it closed
    assert watchdog.armed == 0


def test_a_checkout_that_reconnects_leaves_nothing_armed(
    watched: tuple[sa.Engine, ConnectionWatchdog],
) -> None:
    """A checkout listener refusing the connection (a liveness check of one's own, as
    SQLAlchemy's docs show) makes the pool close it and reconnect on the same record: the
    first connection's arming must go with it, or its deadline shuts down a descriptor
    number the new connection is likely to have been given."""
    engine, watchdog = watched
    with engine.connect() as conn:  # a pooled connection to refuse at the next checkout
        first = conn.connection.dbapi_connection
    refused: list[object] = []

    def refuse_once(dbapi: object, _record: object, _proxy: object) -> None:
        if not refused:
            refused.append(dbapi)
            raise sa.exc.DisconnectionError("refused by the test's liveness check")

    event.listen(engine, "checkout", refuse_once)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
        assert conn.connection.dbapi_connection is not first  # reconnected
        assert watchdog.armed == 1  # only the connection in use
    assert refused == [first]
    assert watchdog.armed == 0
