"""Accepted events, durable before the 202: one inbox item per (event, matching webhook).

Accepting is one spool transaction: the idempotency check, the bound check, every delivery,
and the caller's id remembered for a repeat within the window.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from relay.inbox.deliveries import Delivery
from spool import Clock, Operation, ScheduledQueue, SeenKeys, SpoolDatabase, WriteOutcome, utc_now

INBOX_QUEUE = "inbox"


@dataclass(frozen=True)
class IntakeReceipt:
    """What the 202 says: the event's id and how many deliveries it made."""

    id: str
    deliveries: int
    duplicate: bool = False

    def encode(self) -> bytes:
        return json.dumps({"id": self.id, "deliveries": self.deliveries}).encode()

    @classmethod
    def decode_duplicate(cls, raw: bytes) -> IntakeReceipt:
        fields = json.loads(raw)
        return cls(str(fields["id"]), int(fields["deliveries"]), duplicate=True)


@dataclass(frozen=True)
class Acceptance:
    """One event to accept: its deliveries, and the caller's id if it sent one."""

    company_id: uuid.UUID
    event_id: str
    deliveries: list[Delivery]
    caller_id: str | None


class EventInbox:
    def __init__(
        self, spool: SpoolDatabase, *, idempotency_window: timedelta, clock: Clock = utc_now
    ) -> None:
        self.spool = spool
        self.queue = ScheduledQueue(spool, INBOX_QUEUE, clock=clock)
        self.seen = SeenKeys(spool, "intake", ttl=idempotency_window)
        self._clock = clock

    def accept(
        self,
        company_id: uuid.UUID,
        event_id: str,
        deliveries: list[Delivery],
        *,
        caller_id: str | None,
    ) -> IntakeReceipt:
        """Store the deliveries durably; a repeated caller id gets the first receipt back.

        Raises `SpoolFullError` past the spool's bound (the caller answers 503).
        """
        (outcome,) = self.accept_each([Acceptance(company_id, event_id, deliveries, caller_id)])
        return outcome.get()

    def accept_each(self, acceptances: Sequence[Acceptance]) -> list[WriteOutcome[IntakeReceipt]]:
        """`accept` for several events in one transaction, each with its own outcome (a
        receipt, or `SpoolFullError` ...): one call per batch of intake's requests."""
        return self.spool.write_each([self._store(acceptance) for acceptance in acceptances])

    def try_accept_each(
        self, acceptances: Sequence[Acceptance]
    ) -> list[WriteOutcome[IntakeReceipt]] | None:
        """`accept_each` if the spool's write lock is free now, else None with nothing done
        (see `SpoolDatabase.try_write_each`)."""
        return self.spool.try_write_each([self._store(acceptance) for acceptance in acceptances])

    def _store(self, acceptance: Acceptance) -> Operation[IntakeReceipt]:
        scope = str(acceptance.company_id)
        caller_id = acceptance.caller_id

        def store(conn: sqlite3.Connection) -> IntakeReceipt:
            now = self._clock()
            if caller_id is not None:
                earlier = self.seen.lookup_in(conn, scope, caller_id, now)
                if earlier is not None:
                    return IntakeReceipt.decode_duplicate(earlier)
            self.spool.ensure_capacity(conn)
            for delivery in acceptance.deliveries:
                self.queue.enqueue_in(conn, delivery.host, delivery.encode(), item_id=delivery.id)
            receipt = IntakeReceipt(acceptance.event_id, len(acceptance.deliveries))
            if caller_id is not None:
                self.seen.remember_in(conn, scope, caller_id, receipt.encode(), now)
            return receipt

        return store
