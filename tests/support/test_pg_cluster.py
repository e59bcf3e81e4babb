"""Checks that PgCluster really gives tests a PostgreSQL they can take down and bring back."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from .pg_cluster import PgCluster, find_bin_dir

pytestmark = pytest.mark.postgres


def _select_one(conninfo: str) -> object:
    """Round-trip a trivial query, proving the server accepts connections."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT 1").fetchone()
    assert row is not None
    return row[0]


def test_find_bin_dir_has_server_programs() -> None:
    bindir = find_bin_dir()
    assert (bindir / "initdb").is_file()
    assert (bindir / "pg_ctl").is_file()


def test_outage_lifecycle(tmp_path: Path) -> None:
    cluster = PgCluster(tmp_path, fsync=False)
    try:
        cluster.init()
        cluster.init()  # idempotent
        assert not cluster.running
        cluster.start()
        assert cluster.running
        port = cluster.port
        assert cluster.host == "127.0.0.1"
        assert cluster.url("app") == f"postgresql+psycopg://postgres@127.0.0.1:{port}/app"
        assert _select_one(cluster.conninfo()) == 1

        cluster.create_database("relay_test")
        cluster.create_database("relay_test")  # drops the leftover first
        with psycopg.connect(cluster.conninfo("relay_test")) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (1)")
            conn.commit()

        # Outage: connecting must fail the way application code will see it.
        cluster.stop()
        assert not cluster.running
        cluster.stop()  # idempotent
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(cluster.conninfo("relay_test"), connect_timeout=2)

        # Recovery on the same port: the old conninfo works again, data is intact.
        cluster.start()
        cluster.start()  # idempotent
        assert cluster.port == port
        with psycopg.connect(cluster.conninfo("relay_test")) as conn:
            assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]

        # Crash-like stop, then crash recovery on start.
        cluster.stop(mode="immediate")
        assert not cluster.running
        cluster.start()
        assert _select_one(cluster.conninfo("relay_test")) == 1

        cluster.restart()
        assert _select_one(cluster.conninfo()) == 1

        cluster.drop_database("relay_test")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(cluster.conninfo("relay_test"))

        directory = cluster.directory
        assert directory.is_dir()
    finally:
        cluster.destroy()
    assert not directory.exists()
    assert not cluster.running
    cluster.destroy()  # idempotent


def test_context_manager_and_settings(tmp_path: Path) -> None:
    with PgCluster(tmp_path) as cluster:
        directory = cluster.directory
        assert cluster.log_path.parent == directory
        with psycopg.connect(cluster.conninfo()) as conn:

            def show(name: str) -> str:
                row = conn.execute(f"SHOW {name}").fetchone()
                assert row is not None
                return str(row[0])

            assert show("autovacuum") == "off"
            assert show("fsync") == "on"
            assert show("synchronous_commit") == "on"
            assert show("listen_addresses") == "127.0.0.1"
            assert show("max_connections") == "100"
            assert show("port") == str(cluster.port)
            assert show("server_encoding") == "UTF8"
        with pytest.raises(ValueError):
            cluster.stop(mode="bogus")
    assert not directory.exists()
    assert not cluster.running


def test_failures_mention_the_server_log(tmp_path: Path) -> None:
    # Occupy the port on every interface postgres listens on, so start() must fail.
    with PgCluster(tmp_path, fsync=False) as first:
        second = PgCluster(tmp_path, fsync=False)
        second.port = first.port
        try:
            with pytest.raises(RuntimeError, match=r"pg_ctl start(.|\n)*postgres\.log"):
                second.start(timeout=10)
        finally:
            second.destroy()
