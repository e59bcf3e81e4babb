"""Alembic revisions on real PostgreSQL and SQLite: up, down, up, and no drift from the code.

Monthly partitions of `webhook_executions` are tables of their own that the metadata does not
list (relay/retention.py manages them): they are left out of the table sets and of the drift
comparison, and the partitioning itself, which Alembic does not compare, is checked here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from relay.db import migrations
from relay.db.engine import make_engine
from relay.db.schema import metadata
from tests.faults.harness import relay_env
from tests.support.pg_cluster import PgCluster

TABLES = {"companies", "events", "webhooks", "webhook_events", "webhook_executions"}
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
    env = {**os.environ, "RELAY_DATABASE_URL": url}
    subprocess.run(
        [Path(sys.executable).with_name("alembic"), "upgrade", "head"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert table_names(url) == TABLES


def test_relay_migrate_prints_its_progress_but_not_alembics_plugin_setup(tmp_path: Path) -> None:
    """Read from a real `relay migrate`: alembic sets its plugins up once per process, as it
    is imported, so only a fresh process shows what every start of the relay prints."""
    env = relay_env(f"sqlite:///{tmp_path / 'db' / 'relay.db'}", tmp_path / "spool" / "spool.db")
    result = subprocess.run(
        [Path(sys.executable).with_name("relay"), "migrate"],
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
