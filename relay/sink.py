"""The execution-log sink: drained spool records into `webhook_executions`, idempotently.

On PostgreSQL the batch is COPYed into a session temp table and moved with
`INSERT ... SELECT ... ON CONFLICT (execution_id) DO NOTHING`: COPY is the fastest load but has
no ON CONFLICT. Elsewhere (the embedded SQLite default) it is one executemany of an
`INSERT ... ON CONFLICT DO NOTHING`. Either way: one transaction per batch, and `created_at`
comes from the record, never from the database clock.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from relay.database import is_postgresql
from relay.db_errors import classify
from relay.executions import COLUMNS, ExecutionRow, decode_records
from relay.schema import webhook_executions
from spool import SpoolRecord

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
        rows = decode_records(records)  # RecordSinkError names every invalid record
        started = time.perf_counter()
        per_company = Counter(str(row.company_id) for row in rows)
        for company, count in per_company.items():
            log.info("batch insert: %d rows for company %s", count, company)
        try:
            with self.engine.begin() as conn:
                if self._postgresql:
                    _copy_then_insert(conn, rows)
                else:
                    _insert_rows(conn, rows)
        except (sa_exc.SQLAlchemyError, psycopg.Error, OSError) as exc:
            raise classify(exc) from exc
        self.transactions += 1
        self.rows += len(rows)
        log.info(
            "batch insert done: %d rows, %d companies, 1 transaction, %.0f ms",
            len(rows),
            len(per_company),
            (time.perf_counter() - started) * 1000,
        )


def _copy_then_insert(conn: Connection, rows: Sequence[ExecutionRow]) -> None:
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    with driver.cursor() as cursor:
        cursor.execute(_CREATE_LOAD_TABLE)
        with cursor.copy(f"COPY {_LOAD_TABLE} ({_COLUMN_LIST}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(getattr(row, name) for name in COLUMNS))
        cursor.execute(_MOVE_LOADED)


def _insert_rows(conn: Connection, rows: Sequence[ExecutionRow]) -> None:
    statement = sqlite_insert(webhook_executions).on_conflict_do_nothing(
        index_elements=["execution_id"]
    )
    # The JSON column type serialises values itself: hand it the parsed body, not its text.
    conn.execute(
        statement,
        [row.as_dict() | {"request_payload": json.loads(row.request_payload)} for row in rows],
    )
