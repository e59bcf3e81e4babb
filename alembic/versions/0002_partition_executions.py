"""Partition webhook_executions by month on created_at; dedupe on (execution_id, created_at).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

PostgreSQL: the table is rebuilt as `PARTITION BY RANGE (created_at)` with one partition per
UTC month, so retention drops a month instead of DELETEing its rows. PostgreSQL wants the
partition key in every unique key, so the primary key becomes (id, created_at) and the
dedupe key (execution_id, created_at); `created_at` is fixed when a record is made, so the
dedupe stays exact. Existing rows are copied into partitions made for their months, plus
the current and next month; the id sequence carries on. All in the migration's one
transaction. SQLite (no partitioning): only the unique key changes, so both databases
dedupe on the same key.

Frozen like 0001: the partition DDL is spelled out here rather than imported from the
relay, whose code may change later.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLE = "webhook_executions"
REBUILT = "webhook_executions_rebuilt"
COMPANY_INDEX = "idx_webhook_executions_company_created"
OLD_UNIQUE = ("uq_webhook_executions_execution_id", ["execution_id"])
NEW_UNIQUE = ("uq_webhook_executions_execution_id_created_at", ["execution_id", "created_at"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild(partitioned=True)
    else:
        _swap_unique_sqlite(OLD_UNIQUE[0], NEW_UNIQUE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild(partitioned=False)
    else:
        _swap_unique_sqlite(NEW_UNIQUE[0], OLD_UNIQUE)


def _swap_unique_sqlite(drop: str, create: tuple[str, list[str]]) -> None:
    with op.batch_alter_table(TABLE) as batch:  # SQLite: recreate the table, rows kept
        batch.drop_constraint(drop, type_="unique")
        batch.create_unique_constraint(*create)
    # The copy reflects the indexes, and SQLite reflection loses DESC: restore it.
    op.drop_index(COMPANY_INDEX, table_name=TABLE)
    _create_company_index()


def _create_company_index() -> None:
    op.create_index(COMPANY_INDEX, TABLE, ["company_id", sa.text("created_at DESC")])


def _rebuild(*, partitioned: bool) -> None:
    """Copy the table into a new one of the other kind, then give it the old one's name,
    sequence, keys and indexes (built once on the loaded rows, not row by row)."""
    sequence = op.get_bind().execute(sa.text(f"SELECT pg_get_serial_sequence('{TABLE}', 'id')"))
    id_sequence = sequence.scalar_one()
    kind = " PARTITION BY RANGE (created_at)" if partitioned else ""
    op.execute(f"CREATE TABLE {REBUILT} (LIKE {TABLE} INCLUDING DEFAULTS){kind}")
    if partitioned:
        for year, month in _months_to_partition():
            _create_partition(year, month)
    op.execute(f"INSERT INTO {REBUILT} SELECT * FROM {TABLE}")
    op.execute(f"ALTER SEQUENCE {id_sequence} OWNED BY NONE")  # or DROP TABLE drops it
    op.drop_table(TABLE)
    op.rename_table(REBUILT, TABLE)
    op.execute(f"ALTER SEQUENCE {id_sequence} OWNED BY {TABLE}.id")
    key = ["id", "created_at"] if partitioned else ["id"]
    op.create_primary_key(f"{TABLE}_pkey", TABLE, key)
    unique, columns = NEW_UNIQUE if partitioned else OLD_UNIQUE
    op.create_unique_constraint(unique, TABLE, columns)
    op.create_index(
        "idx_webhook_executions_phone_number",
        TABLE,
        ["phone_number"],
        postgresql_where=sa.text("phone_number IS NOT NULL"),
    )
    _create_company_index()


def _months_to_partition() -> list[tuple[int, int]]:
    """UTC months of the existing rows, plus the current and the next month."""
    rows = op.get_bind().execute(
        sa.text(f"SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') FROM {TABLE}")
    )
    months = {(start.year, start.month) for (start,) in rows}
    now = datetime.now(UTC)
    months.add((now.year, now.month))
    months.add((now.year + now.month // 12, now.month % 12 + 1))
    return sorted(months)


def _create_partition(year: int, month: int) -> None:
    following = (year + month // 12, month % 12 + 1)
    op.execute(
        f"CREATE TABLE {TABLE}_y{year:04d}m{month:02d} PARTITION OF {REBUILT} "
        f"FOR VALUES FROM ('{year:04d}-{month:02d}-01 00:00:00+00') "
        f"TO ('{following[0]:04d}-{following[1]:02d}-01 00:00:00+00')"
    )
