"""Initial schema: companies, events, webhooks, subscriptions and the execution log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Frozen: later schema changes get new revisions; this one must keep producing the same
schema. Works on PostgreSQL (production) and SQLite (the embedded default).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "companies",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), server_default="active"),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now()),
    )
    events = op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("display_name", sa.String(255)),
    )
    op.bulk_insert(
        events,
        [{"name": "call-history-was-created", "display_name": "Call history was created"}],
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "company_id",
            sa.Uuid(),
            sa.ForeignKey("companies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), server_default="active"),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false()),
        sa.Column("created_at", TIMESTAMP, server_default=sa.func.now()),
        sa.Column("updated_at", TIMESTAMP, server_default=sa.func.now()),
    )
    op.create_table(
        "webhook_events",
        sa.Column(
            "webhook_id",
            sa.Uuid(),
            sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id"), primary_key=True),
        sa.Column("filters", JSON, server_default=sa.text("'[]'")),
    )
    op.create_table(
        "webhook_executions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("execution_id", sa.Uuid(), nullable=False),
        sa.Column("webhook_id", sa.Uuid()),
        sa.Column("company_id", sa.Uuid()),
        sa.Column("event_id", sa.Integer()),
        sa.Column("event_type", sa.String(100)),
        sa.Column("message_id", sa.Text()),
        sa.Column("attempt", sa.Integer()),
        sa.Column("status", sa.String(20)),
        sa.Column("response_status", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Integer()),
        sa.Column("phone_number", sa.String(20)),
        sa.Column("request_payload", JSON),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("execution_id", name="uq_webhook_executions_execution_id"),
    )
    op.create_index(
        "idx_webhook_executions_phone_number",
        "webhook_executions",
        ["phone_number"],
        postgresql_where=sa.text("phone_number IS NOT NULL"),
        sqlite_where=sa.text("phone_number IS NOT NULL"),
    )
    op.create_index(
        "idx_webhook_executions_company_created",
        "webhook_executions",
        ["company_id", sa.text("created_at DESC")],
    )


def downgrade() -> None:
    op.drop_index("idx_webhook_executions_company_created", table_name="webhook_executions")
    op.drop_index("idx_webhook_executions_phone_number", table_name="webhook_executions")
    op.drop_table("webhook_executions")
    op.drop_table("webhook_events")
    op.drop_table("webhooks")
    op.drop_table("events")
    op.drop_table("companies")
