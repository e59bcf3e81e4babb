"""Resending a message: a new delivery of the same body under the same `webhook-id`.

It goes through the inbox like every delivery (durable once stored), so the dispatcher
POSTs it and signs it then, with the webhook's secret of that moment (it checks the registry
for changes before a resend's attempt: a secret rotated just before must not lose to its
snapshot), and logs its attempts as the message's next numbers (attempt 7 after six). It
goes to the webhook's URL of now, so a resend after an endpoint was fixed reaches the fixed
one.

The body comes from the inbox while a delivery of the message is still there (exactly the
text POSTed before), else from the log's `request_payload`: the same JSON value, whose text
may differ in spacing and, from PostgreSQL's jsonb, in key order. A body too large to log
(`RELAY_LOG_PAYLOAD_MAX_BYTES`) cannot be resent once its delivery has left the inbox.

A retry of the message to that webhook waiting in the inbox is replaced (the resend goes
now, instead of the retry later): the receiver does not get both. One that is due already
(it is being sent, or will be within a second) is left to go, and nothing is added.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.schema import companies as companies_table
from relay.db.schema import events, webhook_events, webhooks
from relay.errors import InputError
from relay.execution_log.record import is_payload_stand_in
from relay.execution_log.search import Companies
from relay.inbox.deliveries import Delivery, compact_json
from relay.inbox.messages import MessageState, message_states
from relay.inbox.store import EventInbox
from relay.registry.cache import ACTIVE
from spool import Clock, DurableQueue, ScheduledItem, utc_now


@dataclass(frozen=True)
class WebhookTarget:
    """Where a resend goes, as the registry says now."""

    id: uuid.UUID
    company_id: uuid.UUID
    url: str
    event_db_id: int  # the subscription's event


@dataclass(frozen=True)
class UsableWebhook:
    company_id: uuid.UUID
    url: str


@dataclass(frozen=True)
class ResendReceipt:
    message_id: str
    webhook_id: uuid.UUID
    attempt: int  # the number its next attempt is logged as
    queued: bool  # False: a delivery to that webhook was due already and is on its way

    def as_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "webhook_id": str(self.webhook_id),
            "attempt": self.attempt,
            "queued": self.queued,
        }


@dataclass(frozen=True)
class Resend:
    """A resend ready to be stored, in the caller's spool transaction."""

    delivery: Delivery
    replaces: tuple[ScheduledItem, ...]  # retries waiting in the inbox, brought forward

    @property
    def receipt(self) -> ResendReceipt:
        attempt = self.delivery.earlier_attempts + 1
        return ResendReceipt(self.delivery.id, self.delivery.webhook_id, attempt, True)

    def store_in(self, conn: sqlite3.Connection, inbox: EventInbox) -> None:
        """Enqueue it (refused past the spool's bound, like an event) in place of the
        retries it replaces."""
        inbox.spool.ensure_capacity(conn)
        for item in self.replaces:
            inbox.queue.complete_in(conn, item)
        delivery = self.delivery
        inbox.queue.enqueue_in(conn, delivery.host, delivery.encode(), item_id=delivery.id)


def resend(
    engine: Engine,
    inbox: EventInbox,
    outbox: DurableQueue,
    message_id: str,
    *,
    webhook_id: uuid.UUID | None = None,
    companies: Companies = None,
    clock: Clock = utc_now,
) -> ResendReceipt:
    """Resend `message_id` to its webhook, or to `webhook_id` (another of its company's).

    Raises `InputError` 404 for a message or webhook unknown (or outside `companies`), 422
    for one that cannot take it (disabled, not subscribed, body not kept), and
    `SpoolFullError` past the spool's bound (nothing stored)."""
    state = message_states(engine, inbox, outbox, [message_id], companies=companies)[message_id]
    if not state.known:
        raise InputError(404, "message_id", "no such message")
    company_id, event_type = _company_and_event(state)
    target = target_webhook(engine, webhook_id or state.webhooks()[0], company_id, event_type)
    prepared = prepare_resend(state, target, clock())
    if isinstance(prepared, ResendReceipt):
        return prepared
    inbox.spool.write(lambda conn: prepared.store_in(conn, inbox))
    return prepared.receipt


def prepare_resend(
    state: MessageState, target: WebhookTarget, now: datetime
) -> Resend | ResendReceipt:
    """The resend of a message to `target`, or the receipt of the delivery already due."""
    scheduled = state.scheduled_to(target.id)
    due = [s for s in scheduled if s.item.due_at <= now]
    if due:
        return ResendReceipt(state.message_id, target.id, due[0].attempts_so_far + 1, False)
    logged = [a.attempt or 0 for a in state.attempts_to(target.id)]
    earlier = max([*logged, *(s.attempts_so_far for s in scheduled)], default=0)
    _company, event_type = _company_and_event(state)
    source = state.scheduled[0].delivery if state.scheduled else None
    delivery = Delivery(
        id=state.message_id,
        event_id=source.event_id if source else state.message_id,
        company_id=target.company_id,
        webhook_id=target.id,
        url=target.url,
        event_type=event_type,
        event_db_id=target.event_db_id,
        phone_number=source.phone_number if source else state.attempts[-1].phone_number,
        body=source.body if source else _logged_body(state),
        earlier_attempts=earlier,
    )
    return Resend(delivery, tuple(s.item for s in scheduled))


def target_webhook(
    engine: Engine, webhook_id: uuid.UUID, company_id: uuid.UUID, event_type: str
) -> WebhookTarget:
    """The webhook a message of `company_id` may be resent to, as the registry says now."""
    with engine.connect() as conn:
        row = usable_webhook(conn, webhook_id, frozenset({company_id}))
        subscribed = conn.execute(
            sa.select(events.c.id)
            .join(webhook_events, webhook_events.c.event_id == events.c.id)
            .where(webhook_events.c.webhook_id == webhook_id, events.c.name == event_type)
        ).scalar()
    if subscribed is None:
        raise InputError(422, "webhook_id", f"is not subscribed to {event_type}")
    return WebhookTarget(webhook_id, row.company_id, row.url, int(subscribed))


def usable_webhook(
    conn: sa.Connection, webhook_id: uuid.UUID, companies: Companies
) -> UsableWebhook:
    """The webhook, if it exists within `companies` (None: any) and can be sent to:
    404 otherwise (a webhook of another company is not told apart from none), 422 when it
    or its company is disabled."""
    row = conn.execute(
        sa.select(
            webhooks.c.company_id,
            webhooks.c.url,
            webhooks.c.status,
            webhooks.c.deleted,
            companies_table.c.status.label("company_status"),
        )
        .join(companies_table, companies_table.c.id == webhooks.c.company_id)
        .where(webhooks.c.id == webhook_id)
    ).first()
    if row is None or row.deleted or (companies is not None and row.company_id not in companies):
        raise InputError(404, "webhook_id", "no such webhook")
    if (row.status or ACTIVE) != ACTIVE:
        raise InputError(422, "webhook_id", "is disabled: enable it first")
    if (row.company_status or ACTIVE) != ACTIVE:
        raise InputError(422, "webhook_id", "belongs to a company that is not active")
    return UsableWebhook(row.company_id, row.url)


def _company_and_event(state: MessageState) -> tuple[uuid.UUID, str]:
    if state.scheduled:
        delivery = state.scheduled[0].delivery
        return delivery.company_id, delivery.event_type
    latest = state.attempts[-1]
    if latest.company_id is None or latest.event_type is None:
        raise InputError(422, "message_id", "its log rows name no company or event")
    return latest.company_id, latest.event_type


def _logged_body(state: MessageState) -> str:
    """The newest logged body, as text to POST."""
    logged = state.attempts[-1].request_payload
    if is_payload_stand_in(logged):
        raise InputError(
            422,
            "message_id",
            "its body was too large to log (RELAY_LOG_PAYLOAD_MAX_BYTES) and its delivery "
            "is no longer in the inbox, so it cannot be resent",
        )
    return logged if isinstance(logged, str) else compact_json(logged)
