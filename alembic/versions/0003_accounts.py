"""Accounts: users and API tokens; webhooks get a name; keyset indexes for the API's lists.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

`users` holds people (role admin or viewer, optionally limited to a list of company ids) with
an argon2 hash of their password; `api_tokens` holds only the SHA-256 of each token, its
visible prefix, scope, optional company and when it was last used or revoked. Works on
PostgreSQL and SQLite. Frozen like 0001 and 0002.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("webhooks", sa.Column("name", sa.String(255)))
    op.create_index("idx_webhooks_company_created", "webhooks", ["company_id", "created_at", "id"])
    op.create_index("idx_companies_created", "companies", ["created_at", "id"])
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("companies", JSON),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("name", name="uq_users_name"),
        sa.CheckConstraint("role IN ('admin', 'viewer')", name="ck_users_role"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("company_id", sa.Uuid(), sa.ForeignKey("companies.id", ondelete="CASCADE")),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_used_at", TIMESTAMP),
        sa.Column("revoked_at", TIMESTAMP),
        sa.UniqueConstraint("prefix", name="uq_api_tokens_prefix"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        sa.CheckConstraint("scope IN ('read', 'admin', 'events')", name="ck_api_tokens_scope"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_index("idx_companies_created", table_name="companies")
    op.drop_index("idx_webhooks_company_created", table_name="webhooks")
    op.drop_column("webhooks", "name")  # SQLite has DROP COLUMN since 3.35
