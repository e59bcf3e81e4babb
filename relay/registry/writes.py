"""Changes to the registry: the one set of functions behind `relay companies|webhooks ...` and
the management API (`/api/v1`), so both refuse the same things in the same words.

Every change bumps `webhooks.updated_at` (or adds a row), which is what a running relay's
registry fingerprint notices, so it reloads within seconds; a company's change bumps its
webhooks'. Deleting is soft: the row stays (marked deleted) so the execution log's rows keep
their webhook and company.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from relay.db.schema import companies, events, webhook_events, webhooks
from relay.errors import InputError
from relay.ops import redaction
from relay.registry import listing
from relay.registry.filters import Filter, JsonValue, filters_to_json
from relay.registry.listing import (
    ACTIVE,
    CLUSTERS,
    COMPANY_STATUSES,
    DEFAULT_CLUSTER,
    DELETED,
    DISABLED,
    CompanyRow,
    EventType,
    WebhookRow,
)

EVENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
ID_PATH = re.compile(r"[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+){0,9}")
MIN_TOKEN_LENGTH = 8  # the platform's tokens are long; a short one is a typo
MAX_TOKEN_LENGTH = 1000
Subscriptions = Mapping[str, tuple[Filter, ...]]  # event name -> the filters it must pass


class AdminError(InputError):
    """A registry change that cannot be made as asked. `message` is what the CLI prints;
    `status` (404 unknown, 409 conflict, 422 invalid) and `field` are what the API answers."""

    def __init__(self, message: str, *, field: str, status: int = 422) -> None:
        super().__init__(status, field, message)


@dataclass(frozen=True)
class PlatformChange:
    """A change to a company's platform connection; None leaves a part as it is. `remove`
    forgets the token and cluster: the relay closes the company's stream."""

    token: str | None = None
    cluster: str | None = None
    remove: bool = False


@dataclass(frozen=True)
class WebhookChange:
    """What an edit changes; None leaves a part as it is (`clear_name` removes the name)."""

    url: str | None = None
    name: str | None = None
    clear_name: bool = False
    events: Sequence[str] | None = None
    filters: Subscriptions | None = None  # replaces the filters of the events it names
    enabled: bool | None = None


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


# -- companies ----------------------------------------------------------------------------------


def add_company(
    engine: Engine,
    name: str,
    *,
    platform_token: str | None = None,
    cluster: str | None = None,
    company_id: uuid.UUID | None = None,
    status: str = ACTIVE,
) -> CompanyRow:
    """A new company; with a platform token, the relay opens its platform stream as soon as
    it has an active webhook (`cluster` defaults to cluster1). `company_id` keeps an id given
    elsewhere (an import finds its companies again by it); `status` may add it disabled."""
    name = _company_name(name)
    _check_company_status(status)
    platform = _platform_values(PlatformChange(platform_token, cluster), had_token=False)
    company_id = company_id or uuid.uuid4()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            companies.insert().values(
                id=company_id, name=name, status=status, created_at=now, **platform
            )
        )
        added = listing.company(conn, company_id)
    assert added is not None  # inserted in this transaction
    return added


def edit_company(
    engine: Engine,
    company_id: uuid.UUID,
    *,
    name: str | None = None,
    status: str | None = None,
    platform: PlatformChange | None = None,
) -> CompanyRow:
    """Rename a company, disable it (intake then answers 404 for it and its stream closes)
    or enable it, or change its platform connection."""
    values: dict[str, str | None] = {}
    if name is not None:
        values["name"] = _company_name(name)
    if status is not None:
        _check_company_status(status)
        values["status"] = status
    with engine.begin() as conn:
        current = _live_company(conn, company_id)
        if platform is not None:
            values |= _platform_values(platform, had_token=current.platform_token_set)
        if values:
            conn.execute(companies.update().where(companies.c.id == company_id).values(values))
            _touch_webhooks_of(conn, company_id)
        changed = listing.company(conn, company_id)
    assert changed is not None  # the transaction saw it live
    return changed


def delete_company(engine: Engine, company_id: uuid.UUID) -> None:
    """Soft-delete a company and its webhooks: nothing more is accepted or delivered for it."""
    with engine.begin() as conn:
        _live_company(conn, company_id)
        conn.execute(companies.update().where(companies.c.id == company_id).values(status=DELETED))
        conn.execute(
            webhooks.update()
            .where(webhooks.c.company_id == company_id)
            .values(deleted=True, updated_at=datetime.now(UTC))
        )


def _check_company_status(status: str) -> None:
    if status not in COMPANY_STATUSES:
        raise AdminError(
            f"company status must be one of {', '.join(COMPANY_STATUSES)}, not {status!r}",
            field="status",
        )


def _company_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 255:
        raise AdminError("company name must be 1 to 255 characters", field="name")
    return name


def _platform_values(change: PlatformChange, *, had_token: bool) -> dict[str, str | None]:
    """The columns a platform change sets, refusing what the relay could not connect with."""
    if change.remove:
        if change.token is not None or change.cluster is not None:
            raise AdminError(
                "removing the platform connection takes no token or cluster",
                field="platform_token",
            )
        return {"platform_token": None, "cluster": None}
    values: dict[str, str | None] = {}
    token = None
    if change.token is not None:
        token = change.token.strip()
        if not MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH or any(
            c.isspace() for c in token
        ):
            raise AdminError(
                f"platform token must be {MIN_TOKEN_LENGTH} to {MAX_TOKEN_LENGTH} characters "
                "without spaces",
                field="platform_token",
            )
        values["platform_token"] = token
        if not had_token:
            values["cluster"] = DEFAULT_CLUSTER
    if change.cluster is not None:
        if change.cluster not in CLUSTERS:
            raise AdminError(
                f"cluster must be one of {', '.join(CLUSTERS)}, not {change.cluster!r}",
                field="cluster",
            )
        if token is None and not had_token:
            raise AdminError(
                "a cluster needs a platform token: give the token too", field="cluster"
            )
        values["cluster"] = change.cluster
    # Masked in every log line of this process from now on; only once the change is known
    # to be valid, so that a refused typo does not mask its characters everywhere.
    redaction.register(token)
    return values


def _live_company(conn: Connection, company_id: uuid.UUID) -> CompanyRow:
    found = listing.company(conn, company_id)
    if found is None:
        raise AdminError(f"unknown company {company_id}", field="company_id", status=404)
    return found


def _touch_webhooks_of(conn: Connection, company_id: uuid.UUID) -> None:
    conn.execute(
        webhooks.update()
        .where(webhooks.c.company_id == company_id)
        .values(updated_at=datetime.now(UTC))
    )


# -- webhooks -----------------------------------------------------------------------------------


def validate_url(url: str) -> str:
    """Refuse, when it is saved, a URL the dispatcher could never POST to."""
    try:
        parts = urlsplit(url)
        host = httpx.URL(url).host  # what the dispatcher will do with it, IDNA included
    except (ValueError, UnicodeError, httpx.InvalidURL) as exc:
        raise AdminError(f"webhook URL {url!r} cannot be parsed: {exc}", field="url") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise AdminError(f"webhook URL must be an absolute http(s) URL, not {url!r}", field="url")
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
    """Create a webhook subscribed to one event (`relay webhooks add`)."""
    return create_webhook(
        engine,
        company_id=company_id,
        url=url,
        events=[event],
        filters={event: filters},
        secret=secret,
    )


def create_webhook(
    engine: Engine,
    *,
    company_id: uuid.UUID,
    url: str,
    events: Sequence[str],
    filters: Subscriptions,
    secret: str | None,
    name: str | None = None,
    webhook_id: uuid.UUID | None = None,
    enabled: bool = True,
) -> WebhookRow:
    """Create a webhook subscribed to `events`, each with the filters `filters` gives it.
    `webhook_id` keeps an id given elsewhere (an import finds its webhooks again by it);
    `enabled=False` creates it disabled, in the same transaction (no delivery slips out)."""
    validate_url(url)
    name = _webhook_name(name)
    names = _event_list(events)
    webhook_id = webhook_id or uuid.uuid4()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        _live_company(conn, company_id)
        event_ids = _event_ids(conn, names)
        _check_filtered_events(filters, names)
        conn.execute(
            webhooks.insert().values(
                id=webhook_id,
                company_id=company_id,
                url=url,
                name=name,
                secret=secret,
                status=ACTIVE if enabled else DISABLED,
                deleted=False,
                created_at=now,
                updated_at=now,
            )
        )
        _subscribe(
            conn,
            webhook_id,
            event_ids,
            {event: filters_to_json(filters.get(event, ())) for event in names},
        )
        created = listing.webhook(conn, webhook_id)
    assert created is not None
    return created


def edit_webhook(engine: Engine, webhook_id: uuid.UUID, change: WebhookChange) -> WebhookRow:
    """Change a webhook's URL, name, events, filters or whether it is enabled."""
    values: dict[str, object] = {}
    if change.url is not None:
        values["url"] = validate_url(change.url)
    if change.clear_name:
        values["name"] = None
    elif change.name is not None:
        values["name"] = _webhook_name(change.name)
    if change.enabled is not None:
        values["status"] = ACTIVE if change.enabled else DISABLED
    with engine.begin() as conn:
        current = _change_webhook(conn, webhook_id, values)
        if change.events is not None or change.filters is not None:
            _resubscribe(conn, current, change.events, change.filters or {})
        changed = listing.webhook(conn, webhook_id)
    assert changed is not None
    return changed


def disable_webhook(engine: Engine, webhook_id: uuid.UUID) -> None:
    edit_webhook(engine, webhook_id, WebhookChange(enabled=False))


def delete_webhook(engine: Engine, webhook_id: uuid.UUID) -> None:
    """Soft delete: no more deliveries, the row stays for the execution log's rows."""
    with engine.begin() as conn:
        _change_webhook(conn, webhook_id, {"deleted": True})


def rotate_secret(engine: Engine, webhook_id: uuid.UUID) -> tuple[WebhookRow, str]:
    """Give a webhook a new signing secret (signed from the next attempt on); the secret is
    returned to be shown once and never again."""
    secret = new_signing_secret()
    with engine.begin() as conn:
        _change_webhook(conn, webhook_id, {"secret": secret})
        changed = listing.webhook(conn, webhook_id)
    assert changed is not None
    return changed, secret


def _change_webhook(
    conn: Connection, webhook_id: uuid.UUID, values: Mapping[str, object]
) -> WebhookRow:
    """Update a live webhook's row and bump its `updated_at` (what a running relay's
    registry notices); the webhook as it was before."""
    current = _live_webhook(conn, webhook_id)
    conn.execute(
        webhooks.update()
        .where(webhooks.c.id == webhook_id)
        .values({**values, "updated_at": datetime.now(UTC)})
    )
    return current


def _live_webhook(conn: Connection, webhook_id: uuid.UUID) -> WebhookRow:
    found = listing.webhook(conn, webhook_id)
    if found is None:
        raise AdminError(f"unknown webhook {webhook_id}", field="webhook_id", status=404)
    return found


def _webhook_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.strip()
    if len(name) > 255:
        raise AdminError("webhook name must be at most 255 characters", field="name")
    return name or None


def _event_list(names: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(names))
    if not unique:
        raise AdminError("a webhook needs at least one event", field="events")
    return unique


def _event_ids(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    known: dict[str, int] = {
        row.name: row.id for row in conn.execute(sa.select(events.c.name, events.c.id))
    }
    for name in names:
        if name not in known:
            raise AdminError(
                f"unknown event {name!r} (`relay events list` or GET /api/v1/events "
                "shows the catalog)",
                field="events",
            )
    return {name: known[name] for name in names}


def _check_filtered_events(filters: Subscriptions, subscribed: Sequence[str]) -> None:
    for event in filters:
        if event not in subscribed:
            raise AdminError(
                f"filters for {event!r}, which is not one of the webhook's events", field="filters"
            )


def _subscribe(
    conn: Connection,
    webhook_id: uuid.UUID,
    event_ids: Mapping[str, int],
    stored_filters: Mapping[str, list[dict[str, JsonValue]]],
) -> None:
    """Subscribe the webhook to each event of `event_ids`, with its filters (JSON form)."""
    conn.execute(
        webhook_events.insert(),
        [
            {"webhook_id": webhook_id, "event_id": event_id, "filters": stored_filters[name]}
            for name, event_id in event_ids.items()
        ],
    )


def _resubscribe(
    conn: Connection,
    current: WebhookRow,
    events_wanted: Sequence[str] | None,
    filters: Subscriptions,
) -> None:
    """Replace the subscriptions: the events wanted (or the same ones), each with the filters
    given for it, else the ones it had, else none."""
    names = _event_list(events_wanted) if events_wanted is not None else list(current.events)
    event_ids = _event_ids(conn, names)
    _check_filtered_events(filters, names)
    stored = {
        name: filters_to_json(filters[name]) if name in filters else current.filters.get(name, [])
        for name in names
    }
    conn.execute(sa.delete(webhook_events).where(webhook_events.c.webhook_id == current.id))
    _subscribe(conn, current.id, event_ids, stored)


# -- the event catalog --------------------------------------------------------------------------


def add_event_type(
    engine: Engine, name: str, display_name: str | None = None, id_path: str | None = None
) -> EventType:
    """A new event type webhooks may subscribe to, intake accepts and the platform source
    hands on; `id_path` says where its events carry their own id (repeats are dropped)."""
    if not isinstance(name, str) or not EVENT_NAME.fullmatch(name):
        raise AdminError(
            "event name must be 1 to 100 letters, digits or . _ : - (starting with a letter "
            "or digit)",
            field="name",
        )
    if display_name is not None and len(display_name) > 255:
        raise AdminError("display name must be at most 255 characters", field="display_name")
    if id_path is not None and not ID_PATH.fullmatch(id_path):
        raise AdminError(
            "id path must be up to 10 dot-separated keys of letters, digits, _ $ or - "
            "(e.g. callHistory._id)",
            field="id_path",
        )
    try:
        with engine.begin() as conn:
            conn.execute(
                events.insert().values(name=name, display_name=display_name, id_path=id_path)
            )
    except sa.exc.IntegrityError:  # events.name is unique
        raise AdminError(f"event {name!r} exists already", field="name", status=409) from None
    return EventType(name, display_name, id_path)
