"""What the relay knows of a message (one `webhook-id`): its deliveries still scheduled in
the inbox and its logged attempts, in the database and still in the spool.

The inbox is read first: an attempt finishing meanwhile is then seen as logged (its record
is committed with the delivery's completion, in one spool transaction), never as neither
scheduled nor logged. The worst a reader sees is a delivery still scheduled beside the
attempt that just finished it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Engine

from relay.execution_log.rows import ExecutionDetail
from relay.execution_log.search import Companies, message_attempts
from relay.inbox.deliveries import Delivery
from relay.inbox.store import EventInbox
from spool import DurableQueue, ScheduledItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scheduled:
    """A delivery waiting in the inbox: due now (or in flight), or waiting for a retry."""

    item: ScheduledItem
    delivery: Delivery

    @property
    def attempts_so_far(self) -> int:
        """The message's attempts to this webhook once this delivery's are counted."""
        return self.delivery.earlier_attempts + self.item.attempts


@dataclass(frozen=True)
class MessageState:
    message_id: str
    scheduled: tuple[Scheduled, ...]
    attempts: tuple[ExecutionDetail, ...]  # oldest first

    @property
    def known(self) -> bool:
        return bool(self.scheduled or self.attempts)

    def scheduled_to(self, webhook_id: uuid.UUID) -> list[Scheduled]:
        return [s for s in self.scheduled if s.delivery.webhook_id == webhook_id]

    def attempts_to(self, webhook_id: uuid.UUID) -> list[ExecutionDetail]:
        return [a for a in self.attempts if a.webhook_id == webhook_id]

    def webhooks(self) -> list[uuid.UUID]:
        """Every webhook the message went or goes to, in the order it first did."""
        found = [a.webhook_id for a in self.attempts if a.webhook_id is not None]
        found += [s.delivery.webhook_id for s in self.scheduled]
        return list(dict.fromkeys(found))


def message_states(
    engine: Engine,
    inbox: EventInbox,
    outbox: DurableQueue,
    message_ids: Collection[str],
    *,
    webhook_id: uuid.UUID | None = None,
    companies: Companies = None,
) -> dict[str, MessageState]:
    """The state of each message (to one webhook, or to all), within `companies`."""
    scheduled: dict[str, list[Scheduled]] = {message_id: [] for message_id in message_ids}
    for item in inbox.queue.find(message_ids):  # first: see the module's docstring
        try:
            delivery = Delivery.decode(item.payload)
        except (ValueError, KeyError, TypeError) as exc:  # the dispatcher drops it, too
            log.warning("inbox item %s is unreadable: %s", item.id, exc)
            continue
        if companies is not None and delivery.company_id not in companies:
            continue
        if webhook_id is None or delivery.webhook_id == webhook_id:
            scheduled[item.id].append(Scheduled(item, delivery))
    attempts: dict[str, list[ExecutionDetail]] = {message_id: [] for message_id in message_ids}
    logged = message_attempts(
        engine, outbox, message_ids, webhook_id=webhook_id, companies=companies
    )
    for attempt in logged:
        if attempt.message_id in attempts:
            attempts[attempt.message_id].append(attempt)
    return {
        message_id: MessageState(
            message_id, tuple(scheduled[message_id]), tuple(attempts[message_id])
        )
        for message_id in message_ids
    }
