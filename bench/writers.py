"""The PostgreSQL writers the spool is compared against, plus the alternative sink strategy.

All of them write the same `webhook_executions` rows, with the same columns and the same
`ON CONFLICT (execution_id, created_at) DO NOTHING` where they insert, so only the strategy
differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from bench.data import decode, row_values
from relay.execution_log.errors import classify
from relay.execution_log.record import COLUMNS, ExecutionRow
from spool import SpoolRecord

COLUMN_LIST = ", ".join(COLUMNS)
_VALUES = ", ".join("%s::jsonb" if name == "request_payload" else "%s" for name in COLUMNS)
INSERT_SQL = (
    f"INSERT INTO webhook_executions ({COLUMN_LIST}) VALUES ({_VALUES}) "
    "ON CONFLICT (execution_id, created_at) DO NOTHING"
)
COPY_SQL = f"COPY webhook_executions ({COLUMN_LIST}) FROM STDIN"


def raw_copy(conninfo: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """The fastest possible load: one COPY straight into the table, one transaction.

    No dedupe (COPY has no ON CONFLICT), no spool: the ceiling the drain is held against.
    """
    with psycopg.connect(conninfo) as conn:
        with conn.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
            for values in rows:
                copy.write_row(values)
        conn.commit()


def insert_one_per_transaction(conn: psycopg.Connection[Any], values: tuple[Any, ...]) -> None:
    """What a naive consumer does per item: one INSERT, one COMMIT (one fsync)."""
    conn.execute(INSERT_SQL, values)
    conn.commit()


def naive_writer(conninfo: str, rows: Iterable[tuple[Any, ...]]) -> int:
    """One INSERT per row, each in its own transaction: the status quo the issue describes."""
    written = 0
    with psycopg.connect(conninfo) as conn:
        for values in rows:
            insert_one_per_transaction(conn, values)
            written += 1
    return written


class PerCompanyBatcher:
    """The in-memory batcher people reach for first: per company, 50 rows or 1 minute.

    Each company's batch is flushed in its own transaction. Time comes from the caller, so the
    scenario can drive it with simulated time like the spool's drain.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        batch_size: int = 50,
        max_age: timedelta = timedelta(seconds=60),
    ) -> None:
        self.batch_size = batch_size
        self.max_age = max_age
        self.transactions = 0
        self.rows_written = 0
        self._conn = psycopg.connect(conninfo)
        self._pending: dict[Any, list[tuple[Any, ...]]] = {}
        self._oldest: dict[Any, datetime] = {}

    @property
    def connection(self) -> psycopg.Connection[Any]:
        return self._conn

    def add(self, row: ExecutionRow, now: datetime) -> None:
        batch = self._pending.setdefault(row.company_id, [])
        batch.append(row_values(row))
        self._oldest.setdefault(row.company_id, now)
        if len(batch) >= self.batch_size:
            self._flush(row.company_id)

    def tick(self, now: datetime) -> int:
        """Flush every company whose oldest row reached max_age; return transactions made."""
        due = [c for c, since in self._oldest.items() if now - since >= self.max_age]
        for company in due:
            self._flush(company)
        return len(due)

    def flush_all(self) -> None:
        for company in list(self._pending):
            self._flush(company)

    def _flush(self, company: Any) -> None:
        batch = self._pending.pop(company, [])
        self._oldest.pop(company, None)
        if not batch:
            return
        with self._conn.cursor() as cursor:
            cursor.executemany(INSERT_SQL, batch)
        self._conn.commit()
        self.transactions += 1
        self.rows_written += len(batch)

    def close(self) -> None:
        self._conn.close()


class _StrategySink:
    """A `spool.Sink` that decodes like the relay and loads with one named strategy.

    The relay's own sink may change its strategy; these keep the two strategies the issue
    asks about measurable side by side, with the same decoding and error classification.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def write(self, records: Sequence[SpoolRecord]) -> None:
        if not records:
            return
        params = [row_values(row) for row in decode(records)]
        try:
            with self.engine.begin() as conn:
                driver = conn.connection.driver_connection
                assert isinstance(driver, psycopg.Connection)
                with driver.cursor() as cursor:
                    self._load(cursor, params)
        except (sa_exc.SQLAlchemyError, psycopg.Error, OSError) as exc:
            raise classify(exc) from exc

    def _load(self, cursor: psycopg.Cursor[Any], params: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError


class ExecutemanySink(_StrategySink):
    """One pipelined `executemany` of `INSERT ... ON CONFLICT DO NOTHING` per batch."""

    def _load(self, cursor: psycopg.Cursor[Any], params: list[tuple[Any, ...]]) -> None:
        cursor.executemany(INSERT_SQL, params)


_LOAD_TABLE = "bench_executions_load"
_CREATE_LOAD_TABLE = f"""
CREATE TEMP TABLE IF NOT EXISTS {_LOAD_TABLE} (
    execution_id uuid, webhook_id uuid, company_id uuid, event_id integer,
    event_type text, message_id text, attempt integer, status text,
    response_status integer, error text, duration_ms integer, phone_number text,
    request_payload text, created_at timestamptz
) ON COMMIT DELETE ROWS"""
_SELECT_LIST = ", ".join(
    "request_payload::jsonb" if name == "request_payload" else name for name in COLUMNS
)
_MOVE_LOADED = f"""
INSERT INTO webhook_executions ({COLUMN_LIST})
SELECT {_SELECT_LIST} FROM {_LOAD_TABLE}
ON CONFLICT (execution_id, created_at) DO NOTHING"""


class CopySelectSink(_StrategySink):
    """COPY into a session temp table, then `INSERT ... SELECT ... ON CONFLICT DO NOTHING`."""

    def _load(self, cursor: psycopg.Cursor[Any], params: list[tuple[Any, ...]]) -> None:
        cursor.execute(_CREATE_LOAD_TABLE)
        with cursor.copy(f"COPY {_LOAD_TABLE} ({COLUMN_LIST}) FROM STDIN") as copy:
            for values in params:
                copy.write_row(values)
        cursor.execute(_MOVE_LOADED)
