"""Indexes for reading the execution log: search, a message's attempts, recovery, stats.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Every search the relay allows names a time window, and each filter it takes leads an index
that ends in `(created_at DESC, execution_id DESC)`, the search's keyset order, so a page is
one index range read back to front, in the window's partitions only:

- phone: `idx_webhook_executions_phone_number` gains the order columns (it was
  `(phone_number)`; a lookup by number alone, as the original design's queries do, still uses
  it);
- webhook: a new index;
- no filter, or filters no index leads (status, event type): one on the order columns, which
  also carries company and status (PostgreSQL INCLUDE) so the stats count a window from the
  index alone; failures alone have a small partial index, as they are what people look for;
- company: the existing `(company_id, created_at DESC)` serves as it is (ties within a
  microsecond are ordered by a cheap incremental sort);
- message: `(message_id, created_at)`, for a message's attempts (a handful of rows).

On PostgreSQL the indexes are made on the partitioned parent, so every partition, present
and future, gets them; building them locks the table (`CREATE INDEX` on a partitioned table
cannot be concurrent): run `relay migrate` at a quiet moment on a large log.

Frozen like 0001 and 0002: the index definitions are spelled out here.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLE = "webhook_executions"
PHONE_INDEX = "idx_webhook_executions_phone_number"
ORDER = [sa.text("created_at DESC"), sa.text("execution_id DESC")]
HAS_PHONE = sa.text("phone_number IS NOT NULL")
FAILED = sa.text("status = 'failed'")


def upgrade() -> None:
    op.drop_index(PHONE_INDEX, table_name=TABLE)
    op.create_index(
        PHONE_INDEX,
        TABLE,
        [sa.text("phone_number"), *ORDER],
        postgresql_where=HAS_PHONE,
        sqlite_where=HAS_PHONE,
    )
    op.create_index(
        "idx_webhook_executions_created",
        TABLE,
        ORDER,
        postgresql_include=["company_id", "status"],
    )
    op.create_index(
        "idx_webhook_executions_failed",
        TABLE,
        ORDER,
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )
    op.create_index(
        "idx_webhook_executions_webhook_created", TABLE, [sa.text("webhook_id"), *ORDER]
    )
    op.create_index("idx_webhook_executions_message", TABLE, ["message_id", "created_at"])


def downgrade() -> None:
    for name in (
        "idx_webhook_executions_message",
        "idx_webhook_executions_webhook_created",
        "idx_webhook_executions_failed",
        "idx_webhook_executions_created",
        PHONE_INDEX,
    ):
        op.drop_index(name, table_name=TABLE)
    op.create_index(
        PHONE_INDEX, TABLE, ["phone_number"], postgresql_where=HAS_PHONE, sqlite_where=HAS_PHONE
    )
