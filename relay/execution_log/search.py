"""Finding execution-log rows, in the database and still in this relay's spool.

Newest first, a page at a time, with keyset pagination: a page ends at the key
`(created_at, execution_id)` of its last row, and the next page starts strictly below it
(never OFFSET, which re-reads every row skipped). Every query names a time window (the last
week by default), so PostgreSQL reads only that window's monthly partitions, and each filter
leads an index in the same order (alembic/versions/0004).

Rows still in the spool (about the last minute of results) are merged in, marked
`pending`. A row is never missing from both places: the drain commits it to the database
first and deletes it from the spool after, so for an instant it is in both. A search
therefore reads the spool first and the database second: a row drained in between is found
in the database, and a row found in both is shown once, from the database. Its sort key is
the same in both places, so a row drained between two pages keeps its place in the order:
it is on exactly one page, pending or not.

`companies` limits what a caller sees (None: everything); the limit is part of every query,
pending rows included.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.schema import webhook_executions
from relay.errors import InputError
from relay.execution_log.inputs import (
    Window,
    aware,
    normalised_phone,
    parse_int,
    parse_time,
    parse_uuid,
)
from relay.execution_log.pending import pending_rows
from relay.execution_log.record import ExecutionRow
from relay.execution_log.rows import (
    DETAIL_COLUMNS,
    ITEM_COLUMNS,
    ExecutionDetail,
    ExecutionItem,
    SortKey,
    detail_from_database,
    detail_from_spool,
    item_from_database,
    item_from_spool,
    reading,
    spool_sort_key,
)
from spool import Clock, DurableQueue, utc_now

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
Status = Literal["success", "failed"]
STATUSES: tuple[str, ...] = get_args(Status)
Companies = frozenset[uuid.UUID] | None

_table = webhook_executions


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: below this key, in the same window."""

    created_at: datetime
    execution_id: uuid.UUID
    since: datetime  # the window's start, so a defaulted window does not move between pages

    def encode(self) -> str:
        raw = json.dumps(
            [self.created_at.isoformat(), str(self.execution_id), self.since.isoformat()]
        )
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            created_at, execution_id, since = json.loads(raw)
            return cls(
                aware("cursor", datetime.fromisoformat(created_at)),
                uuid.UUID(execution_id),
                aware("cursor", datetime.fromisoformat(since)),
            )
        except (ValueError, TypeError, binascii.Error, InputError):
            raise InputError(422, "cursor", "is not a cursor of this search") from None

    @property
    def key(self) -> SortKey:
        return (self.created_at, self.execution_id)


@dataclass(frozen=True)
class ExecutionQuery:
    """What a search asks for; every field but the window and the page is a filter."""

    company_id: uuid.UUID | None = None
    phone: str | None = None  # any spelling: normalised to its digits
    status: Status | None = None
    event_type: str | None = None
    webhook_id: uuid.UUID | None = None
    message_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def __post_init__(self) -> None:
        if self.phone is not None:
            object.__setattr__(self, "phone", normalised_phone(self.phone))
        if self.status is not None and self.status not in STATUSES:
            raise InputError(422, "status", f"must be one of {', '.join(STATUSES)}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InputError(422, "limit", f"must be from 1 to {MAX_LIMIT}")
        for name in ("event_type", "message_id"):
            value = getattr(self, name)
            if value is not None and not value:
                raise InputError(422, name, "must not be empty")
        for name in ("since", "until"):
            if (moment := getattr(self, name)) is not None:
                aware(name, moment)
        if self.cursor is not None:
            Cursor.decode(self.cursor)

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> ExecutionQuery:
        """A query from text parameters (a URL's query string, command-line options)."""
        known = {field.name for field in fields(cls)}
        for name in params:
            if name not in known:
                raise InputError(422, name, "is not a search parameter")
        values: dict[str, Any] = dict(params)
        for name in ("company_id", "webhook_id"):
            if name in values:
                values[name] = parse_uuid(name, values[name])
        for name in ("since", "until"):
            if name in values:
                values[name] = parse_time(name, values[name])
        if "limit" in values:
            values["limit"] = parse_int("limit", values["limit"])
        return cls(**values)

    def window(self, now: datetime) -> Window:
        start = self.since
        if start is None and self.cursor is not None:
            start = Cursor.decode(self.cursor).since
        return Window.of(start, self.until, now)

    def after(self) -> Cursor | None:
        return None if self.cursor is None else Cursor.decode(self.cursor)


@dataclass(frozen=True)
class Page:
    items: tuple[ExecutionItem, ...]
    next_cursor: str | None  # None: this was the last page

    def as_json(self) -> dict[str, Any]:
        return {"items": [item.as_json() for item in self.items], "next_cursor": self.next_cursor}


def search_executions(
    engine: Engine,
    outbox: DurableQueue,
    query: ExecutionQuery,
    *,
    companies: Companies = None,
    clock: Clock = utc_now,
) -> Page:
    """One page of the rows matching `query`, newest first, pending rows included."""
    window = query.window(clock())
    after = query.after()
    visible = _visible(query.company_id, companies)
    if visible is not None and not visible:
        return Page((), None)
    pending = _pending_matches(outbox, query, window, after, visible)  # first: see above
    logged = _logged_page(engine, query, window, after, visible)
    seen = {item.execution_id for item in logged}
    merged = logged + [item_from_spool(row) for row in pending if _id(row) not in seen]
    merged.sort(key=lambda item: item.sort_key, reverse=True)
    page = merged[: query.limit]
    if len(merged) <= query.limit:
        return Page(tuple(page), None)
    last = page[-1]
    return Page(tuple(page), Cursor(last.created_at, last.execution_id, window.since).encode())


def get_execution(
    engine: Engine, outbox: DurableQueue, execution_id: uuid.UUID, *, companies: Companies = None
) -> ExecutionDetail:
    """One row with its body, from the database or still in the spool."""
    if companies is not None and not companies:
        raise _unknown_execution()
    spooled = pending_rows(outbox, companies=companies, execution_ids=[execution_id])
    query = sa.select(*DETAIL_COLUMNS).where(_table.c.execution_id == execution_id)
    with reading(engine) as conn:
        row = conn.execute(_limited(query, companies)).first()
    if row is not None:
        return detail_from_database(row)
    if spooled:
        return detail_from_spool(spooled[0])
    raise _unknown_execution()


def message_attempts(
    engine: Engine,
    outbox: DurableQueue,
    message_ids: Collection[str],
    *,
    webhook_id: uuid.UUID | None = None,
    companies: Companies = None,
) -> list[ExecutionDetail]:
    """Every logged attempt of these messages (to one webhook, or to any), with bodies,
    oldest first, from the database and the spool."""
    wanted = set(message_ids)
    if not wanted or (companies is not None and not companies):
        return []
    # What the spool can test for: the webhook, or the message when there is just one.
    narrow = (
        [str(webhook_id)] if webhook_id is not None else list(wanted) if len(wanted) == 1 else []
    )
    spooled = [
        row
        for row in pending_rows(outbox, companies=companies, containing=narrow)
        if row.message_id in wanted and (webhook_id is None or row.webhook_id == str(webhook_id))
    ]
    query = sa.select(*DETAIL_COLUMNS).where(_table.c.message_id.in_(sorted(wanted)))
    if webhook_id is not None:
        query = query.where(_table.c.webhook_id == webhook_id)
    with reading(engine) as conn:
        logged = [detail_from_database(row) for row in conn.execute(_limited(query, companies))]
    seen = {detail.execution_id for detail in logged}
    attempts = logged + [detail_from_spool(row) for row in spooled if _id(row) not in seen]
    return sorted(attempts, key=lambda detail: detail.sort_key)


def _visible(company_id: uuid.UUID | None, companies: Companies) -> Companies:
    """The companies a search may show: the one it names, within the caller's limit."""
    if company_id is None:
        return companies
    if companies is None or company_id in companies:
        return frozenset({company_id})
    return frozenset()


def _limited(query: sa.Select[Any], companies: Companies) -> sa.Select[Any]:
    if companies is None:
        return query
    if len(companies) == 1:
        return query.where(_table.c.company_id == next(iter(companies)))
    return query.where(_table.c.company_id.in_(sorted(companies)))


def _logged_page(
    engine: Engine,
    query: ExecutionQuery,
    window: Window,
    after: Cursor | None,
    visible: Companies,
) -> list[ExecutionItem]:
    """The page's candidates from the database: one more row than the page, to know
    whether another page follows."""
    with reading(engine) as conn:
        rows = conn.execute(_logged_page_query(query, window, after, visible))
        return [item_from_database(row) for row in rows]


def _logged_page_query(
    query: ExecutionQuery, window: Window, after: Cursor | None, visible: Companies
) -> sa.Select[Any]:
    """The SQL of a page: the window, the caller's companies, the filters, the cursor."""
    t = _table
    statement = sa.select(*ITEM_COLUMNS).where(
        t.c.created_at >= window.since, t.c.created_at < window.until
    )
    statement = _limited(statement, visible)
    for column, value in (
        (t.c.phone_number, query.phone),
        (t.c.status, query.status),
        (t.c.event_type, query.event_type),
        (t.c.webhook_id, query.webhook_id),
        (t.c.message_id, query.message_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if after is not None:
        # The first condition alone bounds an index on (..., created_at DESC); the row
        # comparison then breaks ties within one microsecond.
        statement = statement.where(
            t.c.created_at <= after.created_at,
            sa.tuple_(t.c.created_at, t.c.execution_id)
            < sa.tuple_(
                sa.literal(after.created_at, t.c.created_at.type),
                sa.literal(after.execution_id, t.c.execution_id.type),
            ),
        )
    return statement.order_by(t.c.created_at.desc(), t.c.execution_id.desc()).limit(query.limit + 1)


def _pending_matches(
    outbox: DurableQueue,
    query: ExecutionQuery,
    window: Window,
    after: Cursor | None,
    visible: Companies,
) -> list[ExecutionRow]:
    """The page's candidates still in the spool, newest first."""
    webhook = None if query.webhook_id is None else str(query.webhook_id)
    named = {
        "phone_number": query.phone,
        "status": query.status,
        "event_type": query.event_type,
        "webhook_id": webhook,
        "message_id": query.message_id,
    }
    wanted = {name: value for name, value in named.items() if value is not None}
    narrow = [value for name, value in wanted.items() if name != "status"]
    keyed: list[tuple[SortKey, ExecutionRow]] = []
    for row in pending_rows(outbox, companies=visible, containing=narrow):
        if any(getattr(row, name) != value for name, value in wanted.items()):
            continue
        key = spool_sort_key(row)
        if window.since <= key[0] < window.until and (after is None or key < after.key):
            keyed.append((key, row))
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [row for _key, row in keyed[: query.limit + 1]]


def _id(row: ExecutionRow) -> uuid.UUID:
    return uuid.UUID(row.execution_id)


def _unknown_execution() -> InputError:
    return InputError(404, "execution_id", "no such execution")
