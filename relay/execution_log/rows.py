"""Execution-log rows as readers get them, from the database or still in the spool.

The same row reads the same from both places (`pending` aside), and sorts by the same key,
`(created_at, execution_id)`, so a row moving from the spool to the database between two
pages of a search keeps its place in the order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from relay.db.schema import webhook_executions
from relay.execution_log.record import ExecutionRow

SortKey = tuple[datetime, uuid.UUID]

_table = webhook_executions
# What a page of results shows: every column but the body and the serial id.
ITEM_COLUMNS: tuple[sa.Column[Any], ...] = (
    _table.c.execution_id,
    _table.c.created_at,
    _table.c.company_id,
    _table.c.webhook_id,
    _table.c.event_type,
    _table.c.message_id,
    _table.c.attempt,
    _table.c.status,
    _table.c.response_status,
    _table.c.error,
    _table.c.duration_ms,
    _table.c.phone_number,
)
DETAIL_COLUMNS = (*ITEM_COLUMNS, _table.c.request_payload)


def reading(engine: Engine) -> Connection:
    """A connection for reading the log: autocommit, so a read pays no BEGIN and ROLLBACK
    round trips (at READ COMMITTED each statement has its own snapshot either way)."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


@dataclass(frozen=True, slots=True)
class ExecutionItem:
    """One POST attempt's result; `pending` while it is still in this relay's spool."""

    execution_id: uuid.UUID
    created_at: datetime
    company_id: uuid.UUID | None
    webhook_id: uuid.UUID | None
    event_type: str | None
    message_id: str | None
    attempt: int | None
    status: str | None
    response_status: int | None
    error: str | None
    duration_ms: int | None
    phone_number: str | None
    pending: bool

    @property
    def sort_key(self) -> SortKey:
        return (self.created_at, self.execution_id)

    def as_json(self) -> dict[str, Any]:
        """The fields as JSON values, named as the API names them."""
        return {f.name: json_value(getattr(self, f.name)) for f in fields(ExecutionItem)}


@dataclass(frozen=True, slots=True)
class ExecutionDetail(ExecutionItem):
    """A row with the body that was sent (its stand-in when it was too large to log)."""

    request_payload: Any

    def as_json(self) -> dict[str, Any]:
        return ExecutionItem.as_json(self) | {"request_payload": self.request_payload}

    def item(self) -> ExecutionItem:
        """The row without its body, as a page of results shows it."""
        return ExecutionItem(**{f.name: getattr(self, f.name) for f in fields(ExecutionItem)})


def item_from_database(row: sa.Row[Any]) -> ExecutionItem:
    return ExecutionItem(**_database_values(row), pending=False)


def detail_from_database(row: sa.Row[Any]) -> ExecutionDetail:
    return ExecutionDetail(**_database_values(row), pending=False, request_payload=row[-1])


def item_from_spool(row: ExecutionRow) -> ExecutionItem:
    """A decoded spool record (`RecordRejections.decode`) as a pending row."""
    return ExecutionItem(**_spool_values(row), pending=True)


def detail_from_spool(row: ExecutionRow) -> ExecutionDetail:
    try:
        body: Any = orjson.loads(row.request_payload)
    except orjson.JSONDecodeError:  # the drain will dead-letter it; show what was sent
        body = row.request_payload
    return ExecutionDetail(**_spool_values(row), pending=True, request_payload=body)


def spool_sort_key(row: ExecutionRow) -> SortKey:
    return (_utc_from_text(row.created_at), uuid.UUID(row.execution_id))


def _spool_values(row: ExecutionRow) -> dict[str, Any]:
    return {
        "execution_id": uuid.UUID(row.execution_id),
        "created_at": _utc_from_text(row.created_at),
        "company_id": uuid.UUID(row.company_id),
        "webhook_id": None if row.webhook_id is None else uuid.UUID(row.webhook_id),
        "event_type": row.event_type,
        "message_id": row.message_id,
        "attempt": row.attempt,
        "status": row.status,
        "response_status": row.response_status,
        "error": row.error,
        "duration_ms": row.duration_ms,
        "phone_number": row.phone_number,
    }


def _utc_from_text(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp).astimezone(UTC)


def _database_values(row: sa.Row[Any]) -> dict[str, Any]:
    values = {column.name: row[n] for n, column in enumerate(ITEM_COLUMNS)}
    created_at: datetime = values["created_at"]
    # SQLite hands back naive datetimes; the relay writes them in UTC.
    utc = created_at.replace(tzinfo=UTC) if created_at.tzinfo is None else created_at
    return values | {"created_at": utc.astimezone(UTC)}


def json_value(value: Any) -> Any:
    """Ids and times as JSON shows them (text); anything else as it is."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
