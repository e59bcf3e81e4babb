"""The relay's tables as SQLAlchemy metadata: what the code reads and writes.

Alembic owns the DDL (`alembic/versions`); a test checks that the migrations and this
metadata describe the same schema on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def as_utc(moment: datetime | None) -> datetime | None:
    """A `Timestamp` as read: SQLite hands it back naive, and it was stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


companies = sa.Table(
    "companies",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("status", sa.String(20), server_default="active"),
    sa.Column("created_at", Timestamp, server_default=sa.func.now()),
    # The platform connection (alembic/versions/0005): the 3C Plus token, never shown back,
    # and its cluster; without a token the company is fed by `POST /v1/events` only.
    sa.Column("platform_token", sa.Text()),
    sa.Column("cluster", sa.String(20)),
    sa.Index("idx_companies_created", "created_at", "id"),  # the API's keyset pages
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("display_name", sa.String(255)),
    # Where an event of this type carries its own unique id (`callHistory._id`): the platform
    # source drops a repeat of an id it has seen.
    sa.Column("id_path", sa.String(200)),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
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
    sa.Column("created_at", Timestamp, server_default=sa.func.now()),
    sa.Column("updated_at", Timestamp, server_default=sa.func.now()),
    sa.Column("name", sa.String(255)),
    # A company's webhooks in the order the API pages through them (keyset, never OFFSET).
    sa.Index("idx_webhooks_company_created", "company_id", "created_at", "id"),
)

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column(
        "webhook_id",
        sa.Uuid(),
        sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id"), primary_key=True),
    sa.Column("filters", Json, server_default=sa.text("'[]'")),
)

# No foreign keys: a log row must stay writable after its webhook or company is deleted.
# On PostgreSQL the table is range-partitioned by month on `created_at` (see
# relay/retention.py), and PostgreSQL wants the partition key in every unique key: the
# primary key there is (id, created_at), and the dedupe key is (execution_id, created_at),
# still exact because `created_at` is fixed when the record is made. SQLite keeps `id` as
# its rowid primary key. Alembic compares neither primary keys nor partitioning, so
# test_migrations checks both.
webhook_executions = sa.Table(
    "webhook_executions",
    metadata,
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
    sa.Column("request_payload", Json),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint(
        "execution_id", "created_at", name="uq_webhook_executions_execution_id_created_at"
    ),
    # Reading the log (alembic/versions/0004): each filter of a search leads an index that
    # ends in the search's keyset order (created_at DESC, execution_id DESC).
    sa.Index(
        "idx_webhook_executions_phone_number",
        "phone_number",
        sa.text("created_at DESC"),
        sa.text("execution_id DESC"),
        postgresql_where=sa.text("phone_number IS NOT NULL"),
        sqlite_where=sa.text("phone_number IS NOT NULL"),
    ),
    sa.Index(
        "idx_webhook_executions_company_created",
        "company_id",
        sa.text("created_at DESC"),
    ),
    sa.Index(
        "idx_webhook_executions_created",
        sa.text("created_at DESC"),
        sa.text("execution_id DESC"),
        postgresql_include=["company_id", "status"],
    ),
    sa.Index(
        "idx_webhook_executions_failed",
        sa.text("created_at DESC"),
        sa.text("execution_id DESC"),
        postgresql_where=sa.text("status = 'failed'"),
        sqlite_where=sa.text("status = 'failed'"),
    ),
    sa.Index(
        "idx_webhook_executions_webhook_created",
        "webhook_id",
        sa.text("created_at DESC"),
        sa.text("execution_id DESC"),
    ),
    sa.Index("idx_webhook_executions_message", "message_id", "created_at"),
)

# What each company's platform stream is doing, written by the relay that holds it (on a state
# change, not per event): `relay companies list`, `/readyz` and the console read it.
platform_streams = sa.Table(
    "platform_streams",
    metadata,
    sa.Column(
        "company_id",
        sa.Uuid(),
        sa.ForeignKey("companies.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text()),
    sa.Column("holder", sa.String(255)),
    sa.Column("since", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# People and their API tokens (relay/accounts). A user limited to some companies lists their
# ids in `companies` (NULL: every company). A token is stored only as the SHA-256 of its
# text; `prefix` (the token's first characters) is how people tell tokens apart and revoke one.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("password_hash", sa.Text(), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("companies", Json),
    sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("name", name="uq_users_name"),
    sa.CheckConstraint("role IN ('admin', 'viewer')", name="ck_users_role"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("company_id", sa.Uuid(), sa.ForeignKey("companies.id", ondelete="CASCADE")),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_used_at", Timestamp),
    sa.Column("revoked_at", Timestamp),
    sa.UniqueConstraint("prefix", name="uq_api_tokens_prefix"),
    sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    sa.CheckConstraint("scope IN ('read', 'admin', 'events')", name="ck_api_tokens_scope"),
)
