"""The execution-log sink: drained spool records into `webhook_executions`, idempotently.

On PostgreSQL the batch is COPYed straight into the table inside a savepoint: COPY is the
fastest load, and duplicates are rare (only records re-sent after a crash between the commit
and the spool delete). COPY has no ON CONFLICT, so when the unique (execution_id, created_at)
says some rows are already there, the savepoint is rolled back and the batch goes through a
session temp table and `INSERT ... SELECT ... ON CONFLICT DO NOTHING`. Elsewhere (the
embedded SQLite default) it is one executemany of `INSERT ... ON CONFLICT DO NOTHING`. Either
way: one transaction per batch, and `created_at` comes from the record, never from the
database clock.

The PostgreSQL table is partitioned by month (relay/retention.py), and a row whose month has
no partition would fail the batch: after a long stop, a clock jump, or a backlog older than
the partitions made ahead. The sink reads the partitions once, holds back rows of any other
month while the COPY streams, creates their partitions and COPYs them after, all in the same
transaction; normally every row's month is known and this costs one set lookup per row.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from relay.db.engine import is_postgresql
from relay.db.schema import webhook_executions
from relay.execution_log.errors import classify
from relay.execution_log.record import COLUMNS, ExecutionRow, RecordRejections, decode_records
from relay.execution_log.retention import Month, Partition, existing_partitions
from spool import RecordSinkError, SpoolRecord, TransientSinkError

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
ON CONFLICT (execution_id, created_at) DO NOTHING"""


class KnownPartitions:
    """The months this sink knows have a partition: read from the catalog once, then grown
    by the partitions the sink creates. Checked for every row, so a hit is a set lookup."""

    def __init__(self, partitions: Iterable[Partition]) -> None:
        self._partitions = list(partitions)
        self._months: set[Month] = set()

    def __contains__(self, month: Month) -> bool:
        if month in self._months:
            return True
        if any(p.covers(month) for p in self._partitions):
            self._months.add(month)
            return True
        return False

    def add(self, months: Iterable[Month]) -> None:
        self._months.update(months)


class ExecutionLogSink:
    """Implements `spool.Sink` for the relay's execution log."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported database {engine.dialect.name!r}: use PostgreSQL")
        self.engine = engine
        self._postgresql = is_postgresql(engine)
        self._partitions: KnownPartitions | None = None  # PostgreSQL; read at the first write
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
        created: set[Month] = set()
        try:
            with self.engine.begin() as conn:
                if sqlite_params is None:
                    if self._partitions is None:
                        self._partitions = KnownPartitions(existing_partitions(conn))
                    created = _copy_records(conn, records, self._partitions)
                else:
                    _insert_rows(conn, sqlite_params)
        except psycopg.errors.CheckViolation as exc:
            if exc.diag.constraint_name is not None:  # a real CHECK constraint: the row's fault
                raise classify(exc) from exc
            # No partition for a month the sink thought had one: dropped since it looked
            # (retention, an operator). Look again on the next try.
            self._partitions = None
            raise TransientSinkError(f"partition missing, will be created: {exc}") from exc
        except (sa_exc.SQLAlchemyError, psycopg.Error, OSError) as exc:
            raise classify(exc) from exc
        if self._partitions is not None:
            self._partitions.add(created)  # only now: a rollback would have undone them
        self.transactions += 1
        self.rows += len(records)
        log.info(
            "batch insert done: %d rows, %d companies, 1 transaction, %.0f ms",
            len(records),
            len(per_company),
            (time.perf_counter() - started) * 1000,
        )


def _copy_records(
    conn: Connection, records: Sequence[SpoolRecord], known: KnownPartitions
) -> set[Month]:
    """COPY the batch in; return the months whose partitions it had to create."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    with driver.cursor() as cursor:
        cursor.execute("SAVEPOINT direct_copy")
        try:
            load = _copy_into(cursor, "webhook_executions", records, known)
            load.rejections.raise_if_any()  # leaving the transaction unfinished rolls it back
            created = _create_partitions(cursor, load.months, known)
            if load.held:
                with cursor.copy(_copy_sql("webhook_executions")) as copy:
                    for row in load.held:
                        copy.write_row(row)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT direct_copy")  # partitions made since, too
            log.info("batch holds rows written before (redelivery after a crash): deduplicating")
            cursor.execute(_CREATE_LOAD_TABLE)
            load = _copy_into(cursor, _LOAD_TABLE, records, None)
            load.rejections.raise_if_any()
            created = _create_partitions(cursor, load.months, known)
            cursor.execute(_MOVE_LOADED)
        cursor.execute("RELEASE SAVEPOINT direct_copy")
    return created


@dataclass
class _Load:
    rejections: RecordRejections = field(default_factory=RecordRejections)
    months: set[Month] = field(default_factory=set)  # of the valid rows
    held: list[ExecutionRow] = field(default_factory=list)  # valid, not sent yet


def _copy_into(
    cursor: psycopg.Cursor[Any],
    table: str,
    records: Sequence[SpoolRecord],
    known: KnownPartitions | None,
) -> _Load:
    """COPY the valid records; once one is invalid, only keep checking the rest. Rows of a
    month not `known` to have a partition are held back (with `known` None, none are)."""
    load = _Load()
    with cursor.copy(_copy_sql(table)) as copy:
        for record in records:
            row = load.rejections.decode(record)
            if row is None or load.rejections.rejected:
                continue
            month = Month.of_text(row.created_at)
            load.months.add(month)
            if known is None or month in known:
                copy.write_row(row)
            else:
                load.held.append(row)
    return load


def _copy_sql(table: str) -> str:
    return f"COPY {table} ({_COLUMN_LIST}) FROM STDIN"


def _create_partitions(
    cursor: psycopg.Cursor[Any], months: set[Month], known: KnownPartitions
) -> set[Month]:
    """Create the partitions of `months` not `known` (IF NOT EXISTS: retention may have made
    one since the sink looked); costs nothing when all are known."""
    missing = {month for month in months if month not in known}
    for month in sorted(missing):
        cursor.execute(month.create_partition_sql())
        log.info("creating partition %s for rows of a month without one", month.partition_name)
    return missing


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
        index_elements=["execution_id", "created_at"]
    )
    conn.execute(statement, params)
