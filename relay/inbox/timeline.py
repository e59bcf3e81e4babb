"""A message's delivery story: where it stands with each webhook, and every attempt made.

A message is one `webhook-id`: one accepted event for one webhook, plus any resends of it
(to that webhook or, asked for, to another of the company's). Its state per webhook:

- `pending`: a delivery is in the inbox and has not been tried yet (a new event, a resend);
- `retrying`: it failed and waits in the inbox for its next attempt (`next_attempt_at`);
- `delivered`: its last attempt succeeded;
- `failed`: its last attempt failed and nothing more is scheduled (failed for good).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine

from relay.errors import InputError
from relay.execution_log.rows import ExecutionItem
from relay.execution_log.search import Companies
from relay.inbox.messages import MessageState, message_states
from relay.inbox.store import EventInbox
from spool import DurableQueue

DeliveryState = Literal["pending", "retrying", "delivered", "failed"]


@dataclass(frozen=True)
class WebhookDelivery:
    webhook_id: uuid.UUID
    state: DeliveryState
    attempts: int  # attempts made to this webhook (logged, or counted by the inbox)
    next_attempt_at: datetime | None  # pending or retrying: when it is due
    last_attempt_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "webhook_id": str(self.webhook_id),
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": _iso(self.next_attempt_at),
            "last_attempt_at": _iso(self.last_attempt_at),
        }


@dataclass(frozen=True)
class MessageTimeline:
    message_id: str
    company_id: uuid.UUID | None
    event_type: str | None
    deliveries: tuple[WebhookDelivery, ...]
    attempts: tuple[ExecutionItem, ...]  # oldest first

    def as_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "company_id": None if self.company_id is None else str(self.company_id),
            "event_type": self.event_type,
            "deliveries": [delivery.as_json() for delivery in self.deliveries],
            "attempts": [attempt.as_json() for attempt in self.attempts],
        }


def message_timeline(
    engine: Engine,
    inbox: EventInbox,
    outbox: DurableQueue,
    message_id: str,
    *,
    companies: Companies = None,
) -> MessageTimeline:
    """The message's state per webhook and its attempts; 404 if the relay knows nothing of
    it (or it belongs to a company outside `companies`)."""
    state = message_states(engine, inbox, outbox, [message_id], companies=companies)[message_id]
    if not state.known:
        raise InputError(404, "message_id", "no such message")
    first = state.scheduled[0].delivery if state.scheduled else None
    latest = state.attempts[-1] if state.attempts else None
    return MessageTimeline(
        message_id,
        first.company_id if first else latest.company_id if latest else None,
        first.event_type if first else latest.event_type if latest else None,
        tuple(_delivery(state, webhook_id) for webhook_id in state.webhooks()),
        tuple(attempt.item() for attempt in state.attempts),
    )


def _delivery(state: MessageState, webhook_id: uuid.UUID) -> WebhookDelivery:
    attempts = state.attempts_to(webhook_id)
    last = attempts[-1] if attempts else None
    last_at = last.created_at if last else None
    made = max((a.attempt or 0 for a in attempts), default=0)
    scheduled = state.scheduled_to(webhook_id)
    if scheduled:
        waiting = min(scheduled, key=lambda s: s.item.due_at)
        retrying = waiting.item.attempts > 0
        made = max(made, waiting.attempts_so_far)
        return WebhookDelivery(
            webhook_id, "retrying" if retrying else "pending", made, waiting.item.due_at, last_at
        )
    outcome: DeliveryState = "delivered" if last and last.status == "success" else "failed"
    return WebhookDelivery(webhook_id, outcome, made, None, last_at)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
