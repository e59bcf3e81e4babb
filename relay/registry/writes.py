"""Changes to the registry made by `relay companies ...` and `relay webhooks ...`.

Every change bumps `webhooks.updated_at` (or adds a row), which is what a running relay's
registry fingerprint notices, so it reloads within seconds.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.schema import companies, events, webhook_events, webhooks
from relay.registry.filters import Filter, filters_to_json


class AdminError(ValueError):
    """A registry change that cannot be made as asked (unknown id, bad URL...)."""


@dataclass(frozen=True)
class CompanyRow:
    id: uuid.UUID
    name: str
    status: str
    created_at: datetime | None


@dataclass(frozen=True)
class WebhookRow:
    id: uuid.UUID
    company_id: uuid.UUID
    url: str
    status: str
    has_secret: bool
    events: tuple[str, ...]


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def add_company(engine: Engine, name: str) -> CompanyRow:
    name = name.strip()
    if not name or len(name) > 255:
        raise AdminError("company name must be 1 to 255 characters")
    company_id = uuid.uuid4()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            companies.insert().values(id=company_id, name=name, status="active", created_at=now)
        )
    return CompanyRow(company_id, name, "active", now)


def list_companies(engine: Engine) -> list[CompanyRow]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(companies).order_by(companies.c.created_at, companies.c.name)
        ).all()
    return [CompanyRow(r.id, r.name, r.status or "active", r.created_at) for r in rows]


def validate_url(url: str) -> str:
    """Refuse, when it is saved, a URL the dispatcher could never POST to."""
    try:
        parts = urlsplit(url)
        host = httpx.URL(url).host  # what the dispatcher will do with it, IDNA included
    except (ValueError, UnicodeError, httpx.InvalidURL) as exc:
        raise AdminError(f"webhook URL {url!r} cannot be parsed: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise AdminError(f"webhook URL must be an absolute http(s) URL, not {url!r}")
    return url


def add_webhook(
    engine: Engine,
    *,
    company_id: uuid.UUID,
    url: str,
    event: str,
    filters: tuple[Filter, ...],
    secret: str | None,
) -> WebhookRow:
    """Create a webhook subscribed to `event` (one subscription; add more events later)."""
    validate_url(url)
    webhook_id = uuid.uuid4()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        if (
            conn.execute(sa.select(companies.c.id).where(companies.c.id == company_id)).first()
            is None
        ):
            raise AdminError(f"unknown company {company_id}")
        event_id = conn.execute(sa.select(events.c.id).where(events.c.name == event)).scalar()
        if event_id is None:
            known = ", ".join(conn.execute(sa.select(events.c.name)).scalars())
            raise AdminError(f"unknown event {event!r} (known: {known})")
        conn.execute(
            webhooks.insert().values(
                id=webhook_id,
                company_id=company_id,
                url=url,
                secret=secret,
                status="active",
                deleted=False,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            webhook_events.insert().values(
                webhook_id=webhook_id, event_id=event_id, filters=filters_to_json(filters)
            )
        )
    return WebhookRow(webhook_id, company_id, url, "active", secret is not None, (event,))


def list_webhooks(engine: Engine, company_id: uuid.UUID | None = None) -> list[WebhookRow]:
    query = (
        sa.select(webhooks, events.c.name.label("event_name"))
        .outerjoin(webhook_events, webhook_events.c.webhook_id == webhooks.c.id)
        .outerjoin(events, events.c.id == webhook_events.c.event_id)
        .where(sa.func.coalesce(webhooks.c.deleted, sa.false()) == sa.false())
        .order_by(webhooks.c.created_at, webhooks.c.id)
    )
    if company_id is not None:
        query = query.where(webhooks.c.company_id == company_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    merged: dict[uuid.UUID, WebhookRow] = {}
    for r in rows:
        previous = merged.get(r.id)
        names = (*previous.events, r.event_name) if previous else (r.event_name,)
        merged[r.id] = WebhookRow(
            r.id,
            r.company_id,
            r.url,
            r.status or "active",
            r.secret is not None,
            tuple(n for n in names if n),
        )
    return list(merged.values())


def disable_webhook(engine: Engine, webhook_id: uuid.UUID) -> None:
    with engine.begin() as conn:
        changed = conn.execute(
            webhooks.update()
            .where(webhooks.c.id == webhook_id)
            .values(status="disabled", updated_at=datetime.now(UTC))
        ).rowcount
    if not changed:
        raise AdminError(f"unknown webhook {webhook_id}")
