"""Who gets what: companies, events and webhook subscriptions, cached from the database.

The intake consults a snapshot in memory; a background refresh replaces it every
`RELAY_REGISTRY_REFRESH_SECONDS` and soon after a change made with `relay webhooks ...`
(a cheap fingerprint query notices it). When the database is unreachable the last good
snapshot keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.schema import companies, events, webhook_events, webhooks
from relay.ops import redaction
from relay.registry.filters import Filter, InvalidFilter, matches_all, parse_filters
from relay.registry.listing import DEFAULT_CLUSTER

log = logging.getLogger(__name__)

ACTIVE = "active"


@dataclass(frozen=True)
class PlatformAccess:
    """How the relay reaches a company's events on the platform (its socket.io stream)."""

    token: str = field(repr=False)
    cluster: str


@dataclass(frozen=True)
class Company:
    id: uuid.UUID
    name: str
    active: bool
    platform: PlatformAccess | None = None


@dataclass(frozen=True)
class Subscription:
    """One webhook subscribed to one event, with the filters the event's data must pass."""

    webhook_id: uuid.UUID
    company_id: uuid.UUID
    url: str
    secret: str | None
    event_id: int
    event_name: str
    filters: tuple[Filter, ...]

    def accepts(self, data: object) -> bool:
        return matches_all(self.filters, data)


@dataclass(frozen=True)
class RegistrySnapshot:
    """An immutable view of the registry, swapped whole on refresh."""

    companies: Mapping[uuid.UUID, Company] = field(default_factory=dict)
    event_ids: Mapping[str, int] = field(default_factory=dict)
    subscriptions: Mapping[tuple[uuid.UUID, str], tuple[Subscription, ...]] = field(
        default_factory=dict
    )
    webhooks: Mapping[uuid.UUID, Subscription] = field(default_factory=dict)
    # event name -> where its events carry their own id (`callHistory._id`), where known
    id_paths: Mapping[str, str] = field(default_factory=dict)

    def matching(self, company_id: uuid.UUID, event: str, data: object) -> list[Subscription]:
        """Active, not deleted webhooks of the company subscribed to `event` whose filters pass."""
        return [s for s in self.subscriptions.get((company_id, event), ()) if s.accepts(data)]

    def subscription(self, webhook_id: uuid.UUID, event: str) -> Subscription | None:
        """The webhook's current subscription to `event`, if it is still active."""
        current = self.webhooks.get(webhook_id)
        if current is None:
            return None
        for candidate in self.subscriptions.get((current.company_id, event), ()):
            if candidate.webhook_id == webhook_id:
                return candidate
        return None


def load_snapshot(engine: Engine) -> RegistrySnapshot:
    """Read the whole registry in one short transaction."""
    with engine.connect() as conn:
        company_rows = conn.execute(
            sa.select(
                companies.c.id,
                companies.c.name,
                companies.c.status,
                companies.c.platform_token,
                companies.c.cluster,
            )
        ).all()
        event_rows = conn.execute(sa.select(events.c.id, events.c.name, events.c.id_path)).all()
        rows = conn.execute(
            sa.select(
                webhooks.c.id,
                webhooks.c.company_id,
                webhooks.c.url,
                webhooks.c.secret,
                events.c.id.label("event_id"),
                events.c.name.label("event_name"),
                webhook_events.c.filters,
            )
            .join(webhook_events, webhook_events.c.webhook_id == webhooks.c.id)
            .join(events, events.c.id == webhook_events.c.event_id)
            .join(companies, companies.c.id == webhooks.c.company_id)
            .where(
                sa.func.coalesce(webhooks.c.status, ACTIVE) == ACTIVE,
                sa.func.coalesce(webhooks.c.deleted, sa.false()) == sa.false(),
                sa.func.coalesce(companies.c.status, ACTIVE) == ACTIVE,
            )
        ).all()
    by_key: dict[tuple[uuid.UUID, str], list[Subscription]] = defaultdict(list)
    by_webhook: dict[uuid.UUID, Subscription] = {}
    # From now on masked in every log line.
    redaction.register_all(
        [*(row.secret for row in rows), *(c.platform_token for c in company_rows)]
    )
    known = {row.id: _company(row) for row in company_rows}
    event_ids = {row.name: row.id for row in event_rows}
    id_paths = {row.name: row.id_path for row in event_rows if row.id_path}
    for row in rows:
        try:
            filters = parse_filters(row.filters if row.filters is not None else [])
        except InvalidFilter as exc:  # saved before validation existed: skip loudly
            log.error("webhook %s: invalid filters for %s ignored: %s", row.id, row.event_name, exc)
            continue
        subscription = Subscription(
            row.id, row.company_id, row.url, row.secret, row.event_id, row.event_name, filters
        )
        by_key[(row.company_id, row.event_name)].append(subscription)
        by_webhook[row.id] = subscription
    return RegistrySnapshot(
        known, event_ids, {key: tuple(subs) for key, subs in by_key.items()}, by_webhook, id_paths
    )


def _company(row: Any) -> Company:  # a Row of load_snapshot's company query
    platform = None
    if row.platform_token:
        platform = PlatformAccess(row.platform_token, row.cluster or DEFAULT_CLUSTER)
    return Company(row.id, row.name, (row.status or ACTIVE) == ACTIVE, platform)


def fingerprint(engine: Engine) -> tuple[object, ...]:
    """A cheap summary that changes whenever companies, webhooks or event types change."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                sa.select(sa.func.count()).select_from(webhooks).scalar_subquery(),
                sa.select(sa.func.max(webhooks.c.updated_at)).scalar_subquery(),
                sa.select(sa.func.count()).select_from(companies).scalar_subquery(),
                sa.select(sa.func.count()).select_from(webhook_events).scalar_subquery(),
                sa.select(sa.func.count()).select_from(events).scalar_subquery(),
            )
        ).one()
    return tuple(row)


class Registry:
    """The current snapshot, refreshed in the background; the last good one survives outages."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._snapshot = RegistrySnapshot()
        self._fingerprint: tuple[object, ...] | None = None
        self._lock = threading.Lock()
        self.loaded = False  # until the first load, nothing is known: intake answers 503

    @property
    def snapshot(self) -> RegistrySnapshot:
        return self._snapshot

    def refresh(self) -> bool:
        """Reload from the database; on failure keep the last good snapshot. True if loaded."""
        try:
            mark = fingerprint(self.engine)
            snapshot = load_snapshot(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("registry refresh failed, serving the last good one: %s", exc)
            return False
        with self._lock:
            self._snapshot, self._fingerprint = snapshot, mark
            self.loaded = True
        log.debug("registry loaded: %d webhooks", len(snapshot.webhooks))
        return True

    def refresh_if_changed(self) -> bool:
        """Reload only if the fingerprint moved (called often; costs one small query)."""
        try:
            mark = fingerprint(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("registry check failed, serving the last good one: %s", exc)
            return False
        if mark == self._fingerprint:
            return False
        return self.refresh()


async def keep_fresh(registry: Registry, *, reload_seconds: float, check_seconds: float) -> None:
    """Forever: a cheap fingerprint check every `check_seconds`, a full reload every
    `reload_seconds` (catches changes the fingerprint cannot see), and a full load while
    nothing has loaded yet. Blocking queries run in a worker thread."""
    checks_per_reload = max(1, round(reload_seconds / check_seconds))
    check = 0
    while True:
        await asyncio.sleep(check_seconds)
        check += 1
        if not registry.loaded or check % checks_per_reload == 0:
            await anyio.to_thread.run_sync(registry.refresh)
        else:
            await anyio.to_thread.run_sync(registry.refresh_if_changed)
