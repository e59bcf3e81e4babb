"""Reading the registry for people: companies, webhooks and the event catalog, one object or
a keyset page at a time (the CLI's lists and the management API both read through here).

Soft-deleted companies and webhooks are gone for these readers: their rows stay only so that
the execution log's rows keep pointing at something.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from relay.db.keyset import decode_cursor, encode_cursor
from relay.db.schema import as_utc, companies, events, platform_streams, webhook_events, webhooks
from relay.registry.filters import JsonValue

T = TypeVar("T")

ACTIVE = "active"
DISABLED = "disabled"
DELETED = "deleted"
COMPANY_STATUSES = (ACTIVE, DISABLED)  # what a person may set and search; DELETED is ours
CLUSTERS = ("cluster1", "cluster2")  # the platform's clusters (RELAY_PLATFORM_CLUSTER*_URL)
DEFAULT_CLUSTER = CLUSTERS[0]


@dataclass(frozen=True)
class StreamRow:
    """What the relay holding a company's platform stream last said of it."""

    state: str  # connecting, connected, refused, disconnected, closed
    detail: str | None
    holder: str | None
    since: datetime | None


@dataclass(frozen=True)
class CompanyRow:
    id: uuid.UUID
    name: str
    status: str
    created_at: datetime | None
    cluster: str | None = None  # set with a platform token, None without one
    platform_token_set: bool = False  # the token itself is never read back
    stream: StreamRow | None = None


@dataclass(frozen=True)
class WebhookRow:
    id: uuid.UUID
    company_id: uuid.UUID
    url: str
    status: str
    has_secret: bool
    events: tuple[str, ...]
    name: str | None = None
    filters: Mapping[str, list[dict[str, JsonValue]]] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def enabled(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True)
class EventType:
    name: str
    display_name: str | None
    id_path: str | None = None  # where its events carry their own id, for dedupe


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, and the cursor of the next one (None on the last page)."""

    items: list[T]
    next_cursor: str | None


# -- companies ----------------------------------------------------------------------------------


def company(conn: Connection, company_id: uuid.UUID) -> CompanyRow | None:
    row = conn.execute(_companies().where(companies.c.id == company_id)).first()
    if row is None or row.status == DELETED:
        return None
    return _company(row)


def _companies() -> sa.Select[tuple[object, ...]]:
    """Companies with their stream's row; the token only as whether there is one."""
    return sa.select(
        companies.c.id,
        companies.c.name,
        companies.c.status,
        companies.c.created_at,
        companies.c.cluster,
        companies.c.platform_token.is_not(None).label("platform_token_set"),
        platform_streams.c.state.label("stream_state"),
        platform_streams.c.detail.label("stream_detail"),
        platform_streams.c.holder.label("stream_holder"),
        platform_streams.c.since.label("stream_since"),
    ).outerjoin(platform_streams, platform_streams.c.company_id == companies.c.id)


def companies_page(
    engine: Engine,
    *,
    limit: int,
    cursor: str | None = None,
    visible: Collection[uuid.UUID] | None = None,
    name: str | None = None,
    contains: str | None = None,
    status: str | None = None,
) -> Page[CompanyRow]:
    """Companies oldest first; `visible` limits them to those ids, `name` is an exact name,
    `contains` a case-insensitive part of it, `status` one of COMPANY_STATUSES."""
    key = (companies.c.created_at, companies.c.id)
    query = _companies().where(sa.func.coalesce(companies.c.status, ACTIVE) != DELETED)
    if visible is not None:
        query = query.where(companies.c.id.in_(list(visible)))
    if name is not None:
        query = query.where(companies.c.name == name)
    if contains is not None:
        query = query.where(
            sa.func.lower(companies.c.name).contains(contains.lower(), autoescape=True)
        )
    if status is not None:
        query = query.where(sa.func.coalesce(companies.c.status, ACTIVE) == status)
    return _page(engine, query, key, cursor, limit, lambda conn, rows: [_company(r) for r in rows])


def _company(row: sa.Row[tuple[object, ...]]) -> CompanyRow:
    stream = None
    if row.stream_state is not None:
        stream = StreamRow(
            row.stream_state, row.stream_detail, row.stream_holder, as_utc(row.stream_since)
        )
    return CompanyRow(
        row.id,
        row.name,
        row.status or ACTIVE,
        as_utc(row.created_at),
        cluster=row.cluster,
        platform_token_set=bool(row.platform_token_set),
        stream=stream,
    )


# -- webhooks -----------------------------------------------------------------------------------


def webhook(conn: Connection, webhook_id: uuid.UUID) -> WebhookRow | None:
    rows = list(conn.execute(_live_webhooks().where(webhooks.c.id == webhook_id)).all())
    found = _webhooks(conn, rows)
    return found[0] if found else None


def webhooks_page(
    engine: Engine, *, limit: int, cursor: str | None = None, company_id: uuid.UUID | None = None
) -> Page[WebhookRow]:
    """Webhooks oldest first, of one company or of all, disabled ones included."""
    key = (webhooks.c.created_at, webhooks.c.id)
    query = _live_webhooks()
    if company_id is not None:
        query = query.where(webhooks.c.company_id == company_id)
    return _page(engine, query, key, cursor, limit, _webhooks)


def every(read_page: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a list, page after page (the CLI prints whole lists)."""
    cursor: str | None = None
    while True:
        page = read_page(cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _live_webhooks() -> sa.Select[tuple[object, ...]]:
    return sa.select(webhooks).where(sa.func.coalesce(webhooks.c.deleted, sa.false()) == sa.false())


def _webhooks(conn: Connection, rows: list[sa.Row[tuple[object, ...]]]) -> list[WebhookRow]:
    """The rows as WebhookRows, with their subscriptions (one more query for the lot)."""
    subscriptions: dict[uuid.UUID, dict[str, list[dict[str, JsonValue]]]] = {
        row.id: {} for row in rows
    }
    if rows:
        query = (
            sa.select(webhook_events.c.webhook_id, events.c.name, webhook_events.c.filters)
            .join(events, events.c.id == webhook_events.c.event_id)
            .where(webhook_events.c.webhook_id.in_(list(subscriptions)))
            .order_by(events.c.name)
        )
        for webhook_id, event_name, filters in conn.execute(query):
            subscriptions[webhook_id][event_name] = list(filters or [])
    return [
        WebhookRow(
            id=row.id,
            company_id=row.company_id,
            url=row.url,
            status=row.status or ACTIVE,
            has_secret=row.secret is not None,
            events=tuple(subscriptions[row.id]),
            name=row.name,
            filters=subscriptions[row.id],
            created_at=as_utc(row.created_at),
            updated_at=as_utc(row.updated_at),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Labels:
    """What a person reads beside a log row's ids: its company's name and its webhook's URL."""

    company_names: Mapping[uuid.UUID, str]
    webhook_urls: Mapping[uuid.UUID, str]


def labels(
    engine: Engine, company_ids: Collection[uuid.UUID], webhook_ids: Collection[uuid.UUID]
) -> Labels:
    """Names and URLs for a page of log rows (two primary-key lookups). Deleted companies and
    webhooks are included: their log rows outlive them, and still name where they went."""
    names: dict[uuid.UUID, str] = {}
    urls: dict[uuid.UUID, str] = {}
    with engine.connect() as conn:
        if company_ids:
            query = sa.select(companies.c.id, companies.c.name)
            for company_id, name in conn.execute(query.where(companies.c.id.in_(set(company_ids)))):
                names[company_id] = name
        if webhook_ids:
            query = sa.select(webhooks.c.id, webhooks.c.url)
            for webhook_id, url in conn.execute(query.where(webhooks.c.id.in_(set(webhook_ids)))):
                urls[webhook_id] = url
    return Labels(names, urls)


# -- the event catalog --------------------------------------------------------------------------


def event_types_page(engine: Engine, *, limit: int, cursor: str | None = None) -> Page[EventType]:
    """Event types by name."""
    query = sa.select(events.c.name, events.c.display_name, events.c.id_path)
    return _page(
        engine,
        query,
        (events.c.name,),
        cursor,
        limit,
        lambda conn, rows: [EventType(r.name, r.display_name, r.id_path) for r in rows],
    )


# -- keyset pages -------------------------------------------------------------------------------


def _page(
    engine: Engine,
    query: sa.Select[tuple[object, ...]],
    key: tuple[sa.ColumnElement[object], ...],
    cursor: str | None,
    limit: int,
    build: Callable[[Connection, list[sa.Row[tuple[object, ...]]]], list[T]],
) -> Page[T]:
    """One page ordered by `key` (unique: the last column is an id or a unique name), read
    after `cursor`; one row more than asked says whether another page follows."""
    if cursor is not None:
        after = decode_cursor(cursor, [_parser(column) for column in key])
        query = query.where(sa.tuple_(*key) > sa.tuple_(*after))
    query = query.order_by(*key).limit(limit + 1)
    with engine.connect() as conn:
        rows = list(conn.execute(query).all())
        more = len(rows) > limit
        rows = rows[:limit]
        items = build(conn, rows)
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = encode_cursor(*(_text(last._mapping[column]) for column in key))
    return Page(items, next_cursor)


def _parser(column: sa.ColumnElement[object]) -> Callable[[str], object]:
    python_type = column.type.python_type
    if python_type is datetime:
        return datetime.fromisoformat
    if python_type is uuid.UUID:
        return uuid.UUID
    return str


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
