"""The execution-log sink: drained spool records into `webhook_executions`, idempotently.

On PostgreSQL the batch is COPYed straight into the table inside a savepoint: COPY is the
fastest load, and duplicates are rare (only records re-sent after a crash between the commit
and the spool delete). COPY has no ON CONFLICT, so when the unique `execution_id` says some
rows are already there, the savepoint is rolled back and the batch goes through a session
temp table and `INSERT ... SELECT ... ON CONFLICT (execution_id) DO NOTHING`. Elsewhere (the
embedded SQLite default) it is one executemany of `INSERT ... ON CONFLICT DO NOTHING`. Either
way: one transaction per batch, and `created_at` comes from the record, never from the
database clock.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from relay.database import is_postgresql
from relay.db_errors import classify
from relay.executions import COLUMNS, ExecutionRow, RecordRejections, decode_records
from relay.schema import webhook_executions
from spool import RecordSinkError, SpoolRecord

log = logging.getLogger(__name__)

_LOAD_TABLE = "webhook_executions_load"
_COLUMN_LIST = ", ".join(COLUMNS)
_SELECT_LIST = ", ".join(
    "request_payload::jsonb" if name == "request_payload" else name for name in COLUMNS
)
_CREATE_LOAD_TABLE = f"""
CREATE TEMP TABLE IF NOT EXISTS {_LOAD_TABLE} (
    execution_id uuid, webhook_id uuid, company_id uuid, event_id integer,
    event_type text, message_id text, attempt integer, status text,
    response_status integer, error text, duration_ms integer, phone_number text,
    request_payload text, created_at timestamptz
) ON COMMIT DELETE ROWS"""
_MOVE_LOADED = f"""
INSERT INTO webhook_executions ({_COLUMN_LIST})
SELECT {_SELECT_LIST} FROM {_LOAD_TABLE}
ON CONFLICT (execution_id) DO NOTHING"""


class ExecutionLogSink:
    """Implements `spool.Sink` for the relay's execution log."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported database {engine.dialect.name!r}: use PostgreSQL")
        self.engine = engine
        self._postgresql = is_postgresql(engine)
        self.transactions = 0  # committed batches: what the database paid
        self.rows = 0

    def write(self, records: Sequence[SpoolRecord]) -> None:
        """Write all records in one transaction, or raise a classified `SinkError`."""
        if not records:
            return
        # Decoding validates: a RecordSinkError names every invalid record. On PostgreSQL it
        # happens while COPY streams, so the server parses one chunk while we decode the next.
        sqlite_params = None if self._postgresql else _sqlite_params(decode_records(records))
        started = time.perf_counter()
        per_company = Counter(record.key for record in records)
        for company, count in per_company.items():
            log.info("batch insert: %d rows for company %s", count, company)
        try:
            with self.engine.begin() as conn:
                if sqlite_params is None:
                    _copy_records(conn, records)
                else:
                    _insert_rows(conn, sqlite_params)
        except (sa_exc.SQLAlchemyError, psycopg.Error, OSError) as exc:
            raise classify(exc) from exc
        self.transactions += 1
        self.rows += len(records)
        log.info(
            "batch insert done: %d rows, %d companies, 1 transaction, %.0f ms",
            len(records),
            len(per_company),
            (time.perf_counter() - started) * 1000,
        )


def _copy_records(conn: Connection, records: Sequence[SpoolRecord]) -> None:
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    with driver.cursor() as cursor:
        cursor.execute("SAVEPOINT direct_copy")
        try:
            rejections = _copy_into(cursor, "webhook_executions", records)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT direct_copy")
            log.info("batch holds rows written before (redelivery after a crash): deduplicating")
            cursor.execute(_CREATE_LOAD_TABLE)
            rejections = _copy_into(cursor, _LOAD_TABLE, records)
            rejections.raise_if_any()
            cursor.execute(_MOVE_LOADED)
        rejections.raise_if_any()  # leaving the transaction unfinished rolls it back
        cursor.execute("RELEASE SAVEPOINT direct_copy")


def _copy_into(
    cursor: psycopg.Cursor[Any], table: str, records: Sequence[SpoolRecord]
) -> RecordRejections:
    """COPY the valid records; once one is invalid, only keep checking the rest."""
    rejections = RecordRejections()
    with cursor.copy(f"COPY {table} ({_COLUMN_LIST}) FROM STDIN") as copy:
        for record in records:
            row = rejections.decode(record)
            if row is not None and not rejections.rejected:
                copy.write_row(row.as_tuple())
    return rejections


def _sqlite_params(rows: Sequence[ExecutionRow]) -> list[dict[str, Any]]:
    """Insert parameters; the JSON column type serialises values itself, so it gets the
    parsed body. A body that is not JSON is the record's fault (PostgreSQL's jsonb would
    refuse it too)."""
    params: list[dict[str, Any]] = []
    rejected: dict[str, str] = {}
    for row in rows:
        try:
            params.append(row.as_dict() | {"request_payload": json.loads(row.request_payload)})
        except ValueError as exc:
            rejected[row.execution_id] = f"request_payload is not JSON: {exc}"
    if rejected:
        raise RecordSinkError(f"{len(rejected)} records with a non-JSON request_payload", rejected)
    return params


def _insert_rows(conn: Connection, params: list[dict[str, Any]]) -> None:
    statement = sqlite_insert(webhook_executions).on_conflict_do_nothing(
        index_elements=["execution_id"]
    )
    conn.execute(statement, params)
