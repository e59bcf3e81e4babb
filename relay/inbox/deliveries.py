"""A delivery: one accepted event for one webhook, as kept in the spool's inbox.

The body is serialised once, at intake, so every retry sends the same bytes under the same
`webhook-id`; only `webhook-timestamp` and the signature change per attempt. Secrets are
not stored in the spool: they are read from the registry when the POST is made.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from relay.errors import InputError
from relay.execution_log.record import phone_number_of
from relay.registry.cache import RegistrySnapshot


@dataclass(frozen=True)
class EventInput:
    """An accepted event, whichever way it came in."""

    company_id: uuid.UUID
    event: str
    data: dict[str, Any]
    id: str | None


@dataclass(frozen=True)
class Delivery:
    id: str  # the `webhook-id` header: stable across retries, receivers dedupe on it
    event_id: str  # the accepted event's id (the caller's, or ours)
    company_id: uuid.UUID
    webhook_id: uuid.UUID
    url: str
    event_type: str
    event_db_id: int | None
    phone_number: str | None
    body: str  # exactly what is POSTed
    # Attempts logged for this message and webhook before this delivery: a resend goes on
    # counting from there, so its attempts are logged as the next numbers.
    earlier_attempts: int = 0

    @property
    def host(self) -> str:
        """Where the POST goes (scheme, host, port): the unit of the per-host bound."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    def encode(self) -> bytes:
        fields: dict[str, Any] = {
            "id": self.id,
            "event_id": self.event_id,
            "company_id": str(self.company_id),
            "webhook_id": str(self.webhook_id),
            "url": self.url,
            "event_type": self.event_type,
            "event_db_id": self.event_db_id,
            "phone_number": self.phone_number,
            "body": self.body,
        }
        if self.earlier_attempts:  # only resends carry it: intake's items stay as they were
            fields["earlier_attempts"] = self.earlier_attempts
        return json.dumps(fields, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Delivery:
        fields: dict[str, Any] = json.loads(payload)
        return cls(
            id=fields["id"],
            event_id=fields["event_id"],
            company_id=uuid.UUID(fields["company_id"]),
            webhook_id=uuid.UUID(fields["webhook_id"]),
            url=fields["url"],
            event_type=fields["event_type"],
            event_db_id=fields["event_db_id"],
            phone_number=fields["phone_number"],
            body=fields["body"],
            earlier_attempts=int(fields.get("earlier_attempts", 0)),
        )


def delivery_body(
    event_type: str, company_id: uuid.UUID, accepted_at: datetime, data: object
) -> str:
    """The POSTed JSON: event type, company, when the relay accepted it, and the data."""
    document = {
        "event_type": event_type,
        "company_id": str(company_id),
        "timestamp": accepted_at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    try:
        return compact_json(document)
    except RecursionError:  # read (orjson reads 1,024 levels) but too deep to write again
        raise InputError(400, "data", "is nested too deeply") from None


def compact_json(value: object) -> str:
    """`value` as compact UTF-8 JSON text, as bodies are POSTed."""
    try:
        return orjson.dumps(value).decode()  # as below, in a tenth of the time
    except TypeError:  # an integer beyond 64 bits, or nested deeper than orjson writes (254)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def deliveries_for(
    snapshot: RegistrySnapshot, event: EventInput, event_id: str, accepted_at: datetime
) -> list[Delivery]:
    """One delivery per webhook of the company subscribed to the event whose filters pass."""
    body = delivery_body(event.event, event.company_id, accepted_at, event.data)
    phone = phone_number_of(event.data)
    return [
        Delivery(
            id=f"msg_{uuid.uuid4().hex}",
            event_id=event_id,
            company_id=event.company_id,
            webhook_id=subscription.webhook_id,
            url=subscription.url,
            event_type=event.event,
            event_db_id=snapshot.event_ids.get(event.event),
            phone_number=phone,
            body=body,
        )
        for subscription in snapshot.matching(event.company_id, event.event, event.data)
    ]
