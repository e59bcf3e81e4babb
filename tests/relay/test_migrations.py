"""Alembic revisions on real PostgreSQL and SQLite: up, down, up, and no drift from the code.

Monthly partitions of `webhook_executions` are tables of their own that the metadata does not
list (relay/retention.py manages them): they are left out of the table sets and of the drift
comparison, and the partitioning itself, which Alembic does not compare, is checked here.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from relay.db import migrations
from relay.db.engine import make_engine
from relay.db.schema import metadata
from tests.support.environment import relay_env
from tests.support.pg_cluster import PgCluster
from tests.support.relay_command import RELAY_SCRIPT

TABLES = {
    "companies",
    "events",
    "webhooks",
    "webhook_events",
    "webhook_executions",
    "users",
    "api_tokens",
    "platform_streams",
}
ROOT = Path(__file__).resolve().parents[2]


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            partitions = partition_names(conn)
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"} - partitions
    finally:
        engine.dispose()


def partition_names(conn: sa.Connection) -> set[str]:
    if conn.dialect.name != "postgresql":
        return set()
    query = "SELECT relname FROM pg_class WHERE relispartition AND relkind IN ('r', 'p')"
    return set(conn.execute(sa.text(query)).scalars())


def test_upgrade_downgrade_upgrade_on_postgresql(pg_cluster: PgCluster) -> None:
    pg_cluster.create_database("migrations_roundtrip")
    url = pg_cluster.url("migrations_roundtrip")
    migrations.upgrade(url)
    assert table_names(url) == TABLES
    migrations.downgrade(url, "base")
    assert table_names(url) == set()
    migrations.upgrade(url)
    assert table_names(url) == TABLES
    engine = make_engine(url)
    with engine.connect() as conn:
        indexes = {
            row.indexname: row.indexdef
            for row in conn.execute(
                sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t"),
                {"t": "webhook_executions"},
            )
        }
        seeded = conn.execute(sa.text("SELECT name FROM events")).scalars().all()
        partitioning = conn.execute(
            sa.text("SELECT pg_get_partkeydef('webhook_executions'::regclass)")
        ).scalar_one()
        primary_key = sa.inspect(conn).get_pk_constraint("webhook_executions")
        partitions = partition_names(conn)
        context = MigrationContext.configure(
            conn, opts={"include_name": lambda name, *_: name not in partitions}
        )
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert "WHERE (phone_number IS NOT NULL)" in indexes["idx_webhook_executions_phone_number"]
    assert "(company_id, created_at DESC)" in indexes["idx_webhook_executions_company_created"]
    assert "(execution_id, created_at)" in indexes["uq_webhook_executions_execution_id_created_at"]
    assert partitioning == "RANGE (created_at)"
    assert primary_key["constrained_columns"] == ["id", "created_at"]
    assert partitions, "the migration creates the current month's partition"
    assert "call-history-was-created" in seeded
    assert diff == [], f"migrations and relay/schema.py disagree: {diff}"


def test_upgrade_downgrade_upgrade_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    migrations.upgrade(url)
    migrations.downgrade(url, "base")
    assert table_names(url) == set()
    migrations.upgrade(url)
    assert table_names(url) == TABLES


def test_plain_alembic_command_reads_relay_database_url(pg_cluster: PgCluster) -> None:
    pg_cluster.create_database("migrations_cli")
    url = pg_cluster.url("migrations_cli")
    subprocess.run(
        [Path(sys.executable).with_name("alembic"), "upgrade", "head"],
        cwd=ROOT,
        env=relay_env(database_url=url),
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert table_names(url) == TABLES


def test_relay_migrate_prints_its_progress_but_not_alembics_plugin_setup(tmp_path: Path) -> None:
    """Read from a real `relay migrate`: alembic sets its plugins up once per process, as it
    is imported, so only a fresh process shows what every start of the relay prints."""
    env = relay_env(
        database_url=f"sqlite:///{tmp_path / 'db' / 'relay.db'}",
        spool_path=tmp_path / "spool" / "spool.db",
    )
    result = subprocess.run(
        [RELAY_SCRIPT, "migrate"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "INFO alembic.runtime.migration: Running upgrade  -> 0001" in result.stderr
    assert "INFO alembic.runtime.migration: Running upgrade 0001 -> 0002" in result.stderr
    assert "alembic.runtime.plugins" not in result.stderr
    assert "database migrated to head" in result.stdout


def test_platform_catalog_seed_keeps_a_type_added_by_hand_and_its_subscriptions(
    tmp_path: Path,
) -> None:
    """0005 seeds the platform's event types: one that was added by hand before keeps its row
    (so its webhooks keep their subscription) and gains its id path; downgrading removes the
    seeded types nobody subscribes to, and keeps the one a webhook uses."""
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    migrations.upgrade(url, "0004")
    engine = make_engine(url)
    company, webhook = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO events (name, display_name) VALUES ('call-was-finished', 'mine')")
        )
        hand_added = conn.execute(
            sa.text("SELECT id FROM events WHERE name = 'call-was-finished'")
        ).scalar_one()
        conn.execute(
            sa.text("INSERT INTO companies (id, name) VALUES (:id, 'acme')"), {"id": company.hex}
        )
        conn.execute(
            sa.text("INSERT INTO webhooks (id, company_id, url) VALUES (:id, :c, 'http://x/')"),
            {"id": webhook.hex, "c": company.hex},
        )
        conn.execute(
            sa.text("INSERT INTO webhook_events (webhook_id, event_id) VALUES (:w, :e)"),
            {"w": webhook.hex, "e": hand_added},
        )
    migrations.upgrade(url)
    with engine.connect() as conn:
        rows = {
            row.name: row
            for row in conn.execute(sa.text("SELECT id, name, display_name, id_path FROM events"))
        }
    assert len(rows) == 43
    assert rows["call-was-finished"].id == hand_added
    assert rows["call-was-finished"].display_name == "mine"
    assert rows["call-was-finished"].id_path == "callHistory._id"
    assert rows["new-message-whatsapp"].id_path == "message.id"
    assert rows["agent-status-changed"].id_path is None
    migrations.downgrade(url, "0004")
    with engine.connect() as conn:
        left = set(conn.execute(sa.text("SELECT name FROM events")).scalars())
    engine.dispose()
    assert left == {"call-history-was-created", "call-was-finished"}
