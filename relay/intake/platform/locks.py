"""Which relay holds which company's stream, when several share one PostgreSQL
(`RELAY_PLATFORM_LOCKS`): a session-level advisory lock per company, held on one connection
of this relay's.

PostgreSQL is the arbiter, no consensus of our own: a relay streams a company only while its
session holds the company's lock, and the server drops a session's locks the moment the
session ends, so when a holder dies (its connection closes with the process) another relay's
next round takes the company over. A relay that loses its session (database restart,
network) cannot know whether another took its companies: it closes every stream at once and
takes locks again like a newcomer. Two relays never stream the same company, at the price
that a database outage pauses the streams (the single-relay default keeps streaming).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

# The first key of every lock (advisory locks are (int4, int4) pairs): "RLY1", so the
# relay's locks do not collide with an application's own on the same database.
LOCK_SPACE = int.from_bytes(b"RLY1", "big", signed=True)
# How often a relay tries to take the companies it wants (and checks its session): a dead
# holder's companies are taken over within this, plus the time its session takes to end.
LOCK_ROUND_SECONDS = 5.0


def lock_key(company_id: uuid.UUID) -> int:
    """The company's second lock key: 32 bits of its id. Two companies that share one are
    held together by one relay (locks are re-entrant per session): still never two relays."""
    return int.from_bytes(company_id.bytes[:4], "big", signed=True)


class StreamLocks:
    """This relay's session and the companies it holds; blocking, so call from a thread."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("RELAY_PLATFORM_LOCKS needs the execution log on PostgreSQL")
        self._engine = engine
        self._conn: Connection | None = None
        self._held: set[uuid.UUID] = set()

    def hold(self, wanted: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Release the companies no longer wanted, try to take the wanted ones not held:
        the companies this relay may stream now (none while the database is away)."""
        try:
            conn = self._session()
            for company_id in self._held - set(wanted):
                conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:space, :key)"),
                    {"space": LOCK_SPACE, "key": lock_key(company_id)},
                )
                self._held.discard(company_id)
            missing = [company_id for company_id in wanted if company_id not in self._held]
            if missing:
                taken = conn.execute(
                    sa.text(
                        "SELECT key FROM unnest(CAST(:keys AS int[])) AS key "
                        "WHERE pg_try_advisory_lock(:space, key)"
                    ),
                    {"space": LOCK_SPACE, "keys": [lock_key(c) for c in missing]},
                ).scalars()
                won = set(taken)
                self._held |= {c for c in missing if lock_key(c) in won}
            else:
                conn.execute(sa.text("SELECT 1"))  # is the session, and so are its locks, alive
        except sa.exc.SQLAlchemyError as exc:
            if self._held:
                log.error(
                    "lost the database session holding %d platform streams: closing them "
                    "until it is back (%s)",
                    len(self._held),
                    exc,
                )
            self._drop_session()
        return set(self._held)

    def close(self) -> None:
        """End the session: its locks go with it, for another relay to take."""
        self._drop_session()

    def _session(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _drop_session(self) -> None:
        self._held.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # never back to the pool with locks on it
                conn.close()
            except sa.exc.SQLAlchemyError:
                log.debug("closing a broken lock session failed", exc_info=True)
