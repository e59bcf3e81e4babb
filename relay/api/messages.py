"""`/api/v1/messages/{message_id}`: a message's delivery state per webhook and every attempt,
and resending it.

A message is one `webhook-id`. A resend goes through the inbox like any delivery (durable
once the 202 is sent), keeps that `webhook-id` and is signed by the dispatcher with the
webhook's secret of the moment it is POSTed (relay/inbox/resend.py).
"""

from __future__ import annotations

from relay.api import params
from relay.api.executions import EXECUTION
from relay.api.routing import Access, Answer, ApiRoute, Call
from relay.api.schemas import NULLABLE_TIMESTAMP, UUID, ref
from relay.execution_log.inputs import parse_uuid
from relay.inbox.resend import resend
from relay.inbox.timeline import message_timeline

MESSAGE = "Message"
WEBHOOK_DELIVERY = "WebhookDelivery"
RESEND_RECEIPT = "ResendReceipt"
SCHEMAS = {
    WEBHOOK_DELIVERY: {
        "type": "object",
        "properties": {
            "webhook_id": UUID,
            "state": {
                "enum": ["pending", "retrying", "delivered", "failed"],
                "description": "pending: not tried yet; retrying: waits for next_attempt_at; "
                "failed: failed for good (nothing more is scheduled)",
            },
            "attempts": {"type": "integer"},
            "next_attempt_at": NULLABLE_TIMESTAMP,
            "last_attempt_at": NULLABLE_TIMESTAMP,
        },
        "required": ["webhook_id", "state", "attempts", "next_attempt_at", "last_attempt_at"],
    },
    MESSAGE: {
        "type": "object",
        "properties": {
            "message_id": {"type": "string"},
            "company_id": {"type": ["string", "null"], "format": "uuid"},
            "event_type": {"type": ["string", "null"]},
            "deliveries": {"type": "array", "items": ref(WEBHOOK_DELIVERY)},
            "attempts": {
                "type": "array",
                "items": ref(EXECUTION),
                "description": "every attempt, oldest first",
            },
        },
        "required": ["message_id", "company_id", "event_type", "deliveries", "attempts"],
    },
    RESEND_RECEIPT: {
        "type": "object",
        "properties": {
            "message_id": {"type": "string"},
            "webhook_id": UUID,
            "attempt": {"type": "integer", "description": "the number its attempt logs as"},
            "queued": {
                "type": "boolean",
                "description": "false: a delivery to that webhook was due already and is on "
                "its way; nothing was added",
            },
        },
        "required": ["message_id", "webhook_id", "attempt", "queued"],
    },
}


def show_message(call: Call) -> Answer:
    story = message_timeline(
        call.engine,
        call.spool.inbox,
        call.spool.outbox,
        call.path["message_id"],
        companies=call.caller.companies,
    )
    return Answer(200, story.as_json())


def resend_message(call: Call) -> Answer:
    params.only_fields(call.body, ("webhook_id",))
    webhook = params.text(call.body, "webhook_id")
    receipt = resend(
        call.engine,
        call.spool.inbox,
        call.spool.outbox,
        call.path["message_id"],
        webhook_id=None if webhook is None else parse_uuid("webhook_id", webhook),
        companies=call.caller.companies,
    )
    if receipt.queued:
        call.spool.wake_dispatcher()
    return Answer(202, receipt.as_json())


ROUTES = (
    ApiRoute(
        "GET",
        "/messages/{message_id}",
        "A message's state per webhook (delivered, retrying with its next time, failed for "
        "good) and all its attempts, oldest first",
        Access.READ,
        show_message,
        ref(MESSAGE),
        errors=(404,),
    ),
    ApiRoute(
        "POST",
        "/messages/{message_id}/resend",
        "Deliver the message again: the same body and `webhook-id`, signed with the "
        "webhook's current secret, logged as its next attempts; to its webhook or to "
        "`webhook_id`, another of the company's subscribed to the event",
        Access.WRITE,
        resend_message,
        ref(RESEND_RECEIPT),
        status=202,
        body={
            "type": "object",
            "properties": {"webhook_id": UUID},
            "additionalProperties": False,
        },
        errors=(404, 413, 415, 422, 503),
    ),
)
