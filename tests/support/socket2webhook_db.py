"""A socket2webhook database on the suite's PostgreSQL cluster, for `relay import
socket2webhook`: part 1 of tests/support/socket2webhook_schema.sql, then the repository's own
migration files when a clone of it is on disk (else part 2, our rendering of them), then the
rows of tests/support/socket2webhook_rows.sql.

Their repository is found at $SOCKET2WEBHOOK_GIT_DIR (a git directory, bare or not), or at
the mirror this project was written next to; nothing of it is copied into ours.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg

from tests.support.pg_cluster import PgCluster

SCHEMA = Path(__file__).with_name("socket2webhook_schema.sql")
ROWS = Path(__file__).with_name("socket2webhook_rows.sql")
PART_2 = "\n-- == part 2:"  # at the start of a line
MIRROR = Path("/work/.mirror/wosiak+socket2webhook/repo")
# Their migration files that run on plain PostgreSQL 15, in the order they were written
# (the schema file says why the others are left out).
THEIR_MIGRATIONS = (
    "supabase/migrations/add_cluster_support.sql",
    "supabase/migrations/add_event_filters.sql",
    "supabase/migrations/add_soft_delete_webhooks.sql",
    "supabase/migrations/add_phone_number_to_executions.sql",
    "server/apply_migration.sql",
    "supabase/migrations/add_searchable_data_to_executions.sql",
    "supabase/migrations/add_message_ack_whatsapp_event.sql",
    "supabase/migrations/cleanup_all_executions.sql",
    "supabase/migrations/emergency_cleanup_executions.sql",
)


def their_git_dir() -> Path | None:
    """Where their repository is, if anywhere (and git can read it)."""
    configured = os.environ.get("SOCKET2WEBHOOK_GIT_DIR")
    found = Path(configured) if configured else MIRROR
    return found if found.exists() and shutil.which("git") else None


def their_file(path: str) -> str:
    """One file of their repository at HEAD."""
    git_dir = their_git_dir()
    assert git_dir is not None, "their repository is not on disk"
    return subprocess.run(
        ["git", "-C", str(git_dir), "show", f"HEAD:{path}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


def schema_parts() -> tuple[str, str]:
    """Part 1 (the tables before the migrations) and part 2 (what they add) of our DDL."""
    text = SCHEMA.read_text()
    before, marker, after = text.partition(PART_2)
    assert marker, f"{SCHEMA} has no {PART_2!r} line"
    return before, marker + after


def create_socket2webhook_database(
    cluster: PgCluster, name: str, *, theirs: bool | None = None, rows: bool = True
) -> str:
    """(Re)create database `name` as a socket2webhook database and return its URL.
    `theirs`: apply their migration files (True), our part 2 (False), or theirs when their
    repository is on disk (None)."""
    if theirs is None:
        theirs = their_git_dir() is not None
    part_1, part_2 = schema_parts()
    migrations = [their_file(path) for path in THEIR_MIGRATIONS] if theirs else [part_2]
    cluster.create_database(name)
    with psycopg.connect(cluster.conninfo(name), autocommit=True) as conn:
        for script in (part_1, *migrations, *([ROWS.read_text()] if rows else [])):
            conn.execute(script.encode())  # no parameters: the simple protocol, many statements
    return cluster.url(name)
