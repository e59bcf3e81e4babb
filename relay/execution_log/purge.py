"""`relay purge --phone NUMBER`: erase one phone number's execution-log rows everywhere.

The rows live in two places: the spool (pending and dead letters) and the database. A drain
in another process moves rows from one to the other, and between its database commit and its
spool delete a row is in both; a purge that ran then would miss rows committed after its
database DELETE. So the purge holds the spool's drain lock throughout, which drains hold for
every cycle.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.schema import webhook_executions
from relay.execution_log.errors import classify
from spool import DurableQueue, drain_lock


class PurgeError(Exception):
    """The purge could not finish; the message says what was done and what to do."""


@dataclass(frozen=True)
class PurgeReport:
    spool_rows: int  # dead letters included
    dead_letters: int
    logged_rows: int

    def render(self) -> str:
        return (
            f"purged {self.spool_rows} rows from the spool, {self.logged_rows} from the "
            f"execution log ({self.dead_letters} dead letters)"
        )


def purge_phone(
    queue: DurableQueue, engine: Engine, number: str, *, wait_seconds: float
) -> PurgeReport:
    """Delete `number`'s rows from the spool, then from `webhook_executions`, holding the
    drain lock so that no drain moves rows between the two meanwhile."""
    lock = drain_lock(queue.db)
    if not lock.acquire(wait_seconds):
        raise PurgeError(
            f"a drain still holds {lock.path} after {wait_seconds:g} s; nothing was purged. "
            "Try again, or with a longer --wait"
        )
    try:
        removed = queue.remove_matching(_has_phone(number))
        try:
            with engine.begin() as conn:
                deleted = conn.execute(
                    sa.delete(webhook_executions).where(webhook_executions.c.phone_number == number)
                ).rowcount
        except sa.exc.SQLAlchemyError as exc:
            raise PurgeError(
                f"removed {removed.records + removed.dead_letters} rows from the spool, but "
                f"the execution log could not be purged: {classify(exc)}. Run the purge again"
            ) from exc
    finally:
        lock.release()
    return PurgeReport(removed.records + removed.dead_letters, removed.dead_letters, deleted)


def _has_phone(number: str) -> Callable[[bytes], bool]:
    """Whether a spooled execution result (`ExecutionResult.spool_payload`) is `number`'s."""
    needle = number.encode()

    def matches(payload: bytes) -> bool:
        if needle not in payload:  # cheap, and true of few rows: parse only those
            return False
        try:  # json, not orjson: it also reads the lone surrogates some dead letters hold
            fields = json.loads(payload)
        except ValueError:  # a mangled dead letter: no field to go by
            return False
        return isinstance(fields, dict) and fields.get("phone_number") == number

    return matches
