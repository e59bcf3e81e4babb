"""Engines for the execution-log database, with every I/O bounded by a timeout."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from relay.db.watchdog import ConnectionWatchdog
from spool import ensure_private_directory

# A checkout runs one heavy statement (a COPY, a query), bounded by the server's
# statement_timeout, and a few light ones; past this share of the timeout it is cut.
CHECKOUT_LIMIT_FACTOR = 1.5


def display_url(url: str | URL) -> str:
    """The URL without its password, fit for a log line."""
    return make_url(url).render_as_string(hide_password=True)


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def make_engine(url: str, *, timeout_seconds: float = 30) -> Engine:
    """Create an engine whose connects and statements cannot hang the drain job forever."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        millis = int(timeout_seconds * 1000)
        engine = create_engine(
            parsed,
            pool_size=2,
            max_overflow=2,
            # No pre-ping: it is an extra autocommit round trip (and a counted commit) per
            # batch. A dead pooled connection fails the batch as transient; SQLAlchemy
            # then invalidates the pool and the retry reconnects.
            pool_recycle=1800,
            connect_args={
                "connect_timeout": max(1, int(timeout_seconds)),
                "options": f"-c statement_timeout={millis} -c lock_timeout={millis}",
                "application_name": "webhook-relay",
                # A silent network cut (no RST, packets dropped) would otherwise hang a
                # query for the kernel's retransmission time, many minutes: unacknowledged
                # data fails after the timeout, and an idle wait is probed as often.
                "tcp_user_timeout": millis,
                "keepalives": 1,
                "keepalives_idle": max(1, int(timeout_seconds)),
                "keepalives_interval": max(1, int(timeout_seconds / 3)),
                "keepalives_count": 3,
            },
        )
        # Statements are bounded by the server; a checkout by this, whatever the network.
        ConnectionWatchdog(CHECKOUT_LIMIT_FACTOR * timeout_seconds + 0.5).watch(engine)
        return engine
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            ensure_private_directory(Path(parsed.database).parent)
        engine = create_engine(parsed, connect_args={"timeout": timeout_seconds})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
