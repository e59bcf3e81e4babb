"""Retention: monthly partitions created ahead and dropped whole on PostgreSQL, batched
deletes on SQLite, and a sink that never fails for want of a partition.

PostgreSQL tests use a database of their own: they create and drop partitions, which the
rest of the suite's database should not see.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from sqlalchemy import Engine

from relay.db import migrations
from relay.db.engine import make_engine
from relay.db.schema import webhook_executions
from relay.execution_log.retention import (
    Month,
    Partition,
    RetentionError,
    apply_retention,
    delete_expired_rows,
    existing_partitions,
    plan_retention,
)
from relay.execution_log.sink import ExecutionLogSink
from spool import SpoolRecord, TransientSinkError, utc_now
from tests.support.environment import relay_env
from tests.support.pg_cluster import PgCluster
from tests.support.relay_command import InProcessCli
from tests.support.relay_data import assert_logged_once, logged_ids, make_result

DATABASE = "relay_retention"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def partition(month: Month) -> Partition:
    return Partition(month.partition_name, month.start, month.end)


def records_at(*moments: datetime) -> list[SpoolRecord]:
    """One spool record per moment, each with a fresh execution id."""
    records = []
    for seq, moment in enumerate(moments):
        result = make_result(uuid.uuid4(), created_at=moment)
        payload = result.spool_payload()
        records.append(SpoolRecord(seq, str(uuid.uuid4()), result.spool_key(), moment, payload))
    return records


# -- the planner ------------------------------------------------------------------------------

JAN, FEB, MAR, APR = (Month(2026, m) for m in (1, 2, 3, 4))


@pytest.mark.parametrize(
    ("now", "existing", "create", "drop"),
    [
        pytest.param("2026-01-15", [], [JAN, FEB, MAR], [], id="empty: this month + 2 ahead"),
        pytest.param("2026-01-15", [JAN, FEB], [MAR], [], id="only the missing ones"),
        pytest.param("2026-01-15", [JAN, FEB, MAR], [], [], id="nothing to do"),
        pytest.param(
            "2026-12-31 23:59",
            [],
            [Month(2026, 12), Month(2027, 1), Month(2027, 2)],
            [],
            id="across the new year",
        ),
        # cutoff 2026-05-01 - 90 days = 2026-01-31: January still has a day to go
        pytest.param("2026-05-01", [JAN, FEB], [Month(2026, 5), Month(2026, 6), Month(2026, 7)],
                     [], id="a month is kept while any of it is young"),
        # cutoff 2026-05-02 - 90 days = 2026-02-01: all of January is older
        pytest.param("2026-05-02", [JAN, FEB], [Month(2026, 5), Month(2026, 6), Month(2026, 7)],
                     [JAN], id="dropped when its end reaches the cutoff"),
    ],
)  # fmt: skip
def test_plan(now: str, existing: list[Month], create: list[Month], drop: list[Month]) -> None:
    plan = plan_retention(at(now), 90, [partition(m) for m in existing])
    assert list(plan.create) == create
    assert [p.name for p in plan.drop] == [m.partition_name for m in drop]


def test_plan_leaves_unbounded_and_overlapping_partitions_alone() -> None:
    old_catch_all = Partition("old_rows", None, at("2025-01-01"))
    everything_ahead = Partition("future_rows", at("2026-02-15"), None)
    plan = plan_retention(at("2026-01-15"), 90, [old_catch_all, everything_ahead])
    assert plan.create == (JAN,)  # February and March overlap `future_rows`
    assert [p.name for p in plan.drop] == ["old_rows"]  # whole range before the cutoff
    assert plan_retention(at("2027-01-15"), 1, [everything_ahead]).drop == ()


def test_plan_refuses_a_retention_under_a_day() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_retention(at("2026-01-15"), 0, [])


@pytest.mark.parametrize(
    ("timestamp", "month"),
    [
        ("2026-01-31T23:59:59.999999+00:00", JAN),
        ("2026-01-31T22:00:00-03:00", FEB),  # 01:00 UTC on 1 February
        ("2026-03-01T00:30:00+01:00", FEB),
    ],
)
def test_months_are_utc_months(timestamp: str, month: Month) -> None:
    assert Month.of_text(timestamp) == month
    assert month.start <= datetime.fromisoformat(timestamp) < month.end


# -- PostgreSQL ------------------------------------------------------------------------------


def new_database(pg_cluster: PgCluster, name: str, revision: str = "head") -> str:
    """A fresh database migrated to `revision`; its URL."""
    pg_cluster.create_database(name)
    migrations.upgrade(pg_cluster.url(name), revision)
    return pg_cluster.url(name)


@pytest.fixture(scope="module")
def retention_url(pg_cluster: PgCluster) -> str:
    return new_database(pg_cluster, DATABASE)


@pytest.fixture
def engine(retention_url: str, pg_cluster: PgCluster) -> Iterator[Engine]:
    """An engine on the retention database, starting with no partitions at all."""
    if not pg_cluster.running:
        pg_cluster.start()
    engine = make_engine(retention_url, timeout_seconds=5)
    with engine.begin() as conn:
        for existing in existing_partitions(conn):
            conn.exec_driver_sql(f"DROP TABLE {existing.name}")
    yield engine
    engine.dispose()


def partition_names(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [p.name for p in existing_partitions(conn)]


def test_partitions_are_created_ahead_and_dropped_when_expired(engine: Engine) -> None:
    sink = ExecutionLogSink(engine)
    with freeze_time("2026-01-15 03:00:00"):
        report = apply_retention(engine, utc_now(), 90)
        assert report.created == tuple(m.partition_name for m in (JAN, FEB, MAR))
        assert report.dropped == ()
        assert partition_names(engine) == list(report.created)
        january = records_at(at("2026-01-01"), at("2026-01-31 23:59:59"))
        february = records_at(at("2026-02-01"), at("2026-02-27 12:00"))
        march = records_at(at("2026-03-31 23:59:59"))
        sink.write(january + february + march)
        assert apply_retention(engine, utc_now(), 90).created == ()  # idempotent

    with freeze_time("2026-05-20 03:00:00"):  # cutoff 2026-02-19: all of January is older
        report = apply_retention(engine, utc_now(), 90)
    assert report.dropped == (JAN.partition_name,)
    assert report.created == tuple(Month(2026, m).partition_name for m in (5, 6, 7))
    assert JAN.partition_name not in partition_names(engine)
    assert_logged_once(engine, [r.id for r in february + march])  # January's rows are gone


def test_dry_run_changes_nothing(engine: Engine) -> None:
    apply_retention(engine, at("2026-01-15"), 90)
    before = partition_names(engine)
    report = apply_retention(engine, at("2026-06-15"), 90, dry_run=True)
    assert report.dropped == (JAN.partition_name, FEB.partition_name)
    assert len(report.created) == 3
    assert "would drop 2 partitions" in report.summary()
    assert partition_names(engine) == before


def test_the_sink_creates_a_missing_month_on_the_fly(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A backlog older than the partitions, and a clock that jumped years ahead."""
    apply_retention(engine, at("2026-01-15"), 90)
    sink = ExecutionLogSink(engine)
    records = records_at(at("2025-12-31 23:00"), at("2026-01-10"), at("2031-07-04 12:00"))
    with caplog.at_level("INFO", logger="relay.execution_log.sink"):
        sink.write(records)
    assert_logged_once(engine, [r.id for r in records])
    assert sink.transactions == 1
    names = partition_names(engine)
    assert {Month(2025, 12).partition_name, Month(2031, 7).partition_name} <= set(names)
    created = [r.getMessage() for r in caplog.records if "creating partition" in r.getMessage()]
    assert len(created) == 2
    caplog.clear()
    with caplog.at_level("INFO", logger="relay.execution_log.sink"):
        sink.write(records_at(at("2031-07-05")))  # known now: no DDL
    assert not [r for r in caplog.records if "creating partition" in r.getMessage()]


def test_duplicates_are_still_dropped_with_the_new_key(engine: Engine) -> None:
    apply_retention(engine, at("2026-01-15"), 90)
    records = records_at(at("2026-01-10"), at("2026-01-11"), at("2029-02-03"))
    sink = ExecutionLogSink(engine)
    sink.write(records)
    sink.write(records)  # a redelivery: same execution_id, same created_at
    ExecutionLogSink(engine).write([*records, *records_at(at("2029-03-01"))])
    ids = logged_ids(engine)
    assert len(ids) == len(set(ids)) == 4


def test_a_partition_dropped_under_the_sink_is_recreated_on_retry(engine: Engine) -> None:
    sink = ExecutionLogSink(engine)
    sink.write(records_at(at("2026-01-10")))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {JAN.partition_name}")
    late = records_at(at("2026-01-11"))
    with pytest.raises(TransientSinkError, match="partition missing"):
        sink.write(late)
    sink.write(late)
    assert logged_ids(engine) == [late[0].id]


def test_a_busy_table_makes_the_job_give_up_quickly_not_stall_the_drain(
    engine: Engine,
) -> None:
    apply_retention(engine, at("2026-01-15"), 90)
    with engine.connect() as reader:
        reader.exec_driver_sql("SELECT count(*) FROM webhook_executions")  # holds its lock
        started = time.monotonic()
        with pytest.raises(RetentionError, match="stayed busy"):
            apply_retention(engine, at("2026-06-15"), 90)
        assert time.monotonic() - started < 10
    assert apply_retention(engine, at("2026-06-15"), 90).dropped  # the next run does it


def test_retention_refuses_an_unpartitioned_table(pg_cluster: PgCluster) -> None:
    engine = make_engine(new_database(pg_cluster, "retention_unpartitioned", "0001"))
    try:
        with pytest.raises(RetentionError, match="relay migrate"):
            apply_retention(engine, at("2026-01-15"), 90)
    finally:
        engine.dispose()


def test_migration_partitions_existing_rows_and_downgrades(pg_cluster: PgCluster) -> None:
    url = new_database(pg_cluster, "retention_migration", "0001")
    engine = make_engine(url)
    moments = [at("2026-08-03 10:00"), at("2026-10-31 23:30"), datetime.now(UTC)]
    rows = [{"execution_id": uuid.uuid4(), "created_at": moment} for moment in moments]
    query = sa.select(webhook_executions.c.id, webhook_executions.c.execution_id)
    try:
        with engine.begin() as conn:
            conn.execute(webhook_executions.insert(), rows)
            before = conn.execute(query.order_by("id")).all()

        migrations.upgrade(url)
        with engine.begin() as conn:
            assert conn.execute(query.order_by("id")).all() == before
            names = {p.name for p in existing_partitions(conn)}
            now = Month.of(datetime.now(UTC))
            expected = {Month(2026, 8), Month(2026, 10), now, now.plus(1)}
            assert names == {m.partition_name for m in expected}
            added = {"execution_id": uuid.uuid4(), "created_at": datetime.now(UTC)}
            new_id = conn.execute(
                webhook_executions.insert().values(added).returning(webhook_executions.c.id)
            ).scalar_one()
        assert new_id > before[-1].id  # the id sequence carried on

        migrations.downgrade(url, "0001")
        with engine.connect() as conn:
            kind = conn.exec_driver_sql(
                "SELECT relkind FROM pg_class WHERE relname = 'webhook_executions'"
            ).scalar_one()
            unique = sa.inspect(conn).get_unique_constraints("webhook_executions")
            assert conn.execute(query.order_by("id")).all()[:3] == before
        assert kind == "r"
        assert [u["column_names"] for u in unique] == [["execution_id"]]
    finally:
        engine.dispose()


# -- SQLite ----------------------------------------------------------------------------------


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_sqlite_deletes_exactly_the_expired_rows_in_batches(sqlite_engine: Engine) -> None:
    cutoff = at("2026-03-01")
    # Expired and kept rows interleaved, so batches must skip kept rows correctly.
    moments = [cutoff + timedelta(seconds=(n - 700) * (1 if n % 3 else 97)) for n in range(2_000)]
    rows = [{"execution_id": uuid.uuid4(), "created_at": moment} for moment in moments]
    with sqlite_engine.begin() as conn:
        conn.execute(webhook_executions.insert(), rows)
    expired = sum(moment < cutoff for moment in moments)
    commits: list[object] = []
    sa.event.listen(sqlite_engine, "commit", commits.append)

    assert delete_expired_rows(sqlite_engine, cutoff, batch_rows=100, dry_run=True) == expired
    assert delete_expired_rows(sqlite_engine, cutoff, batch_rows=100) == expired

    assert len(commits) == expired // 100 + 1  # bounded transactions, the last one short
    with sqlite_engine.connect() as conn:
        left = conn.execute(sa.select(webhook_executions.c.created_at)).scalars().all()
    assert len(left) == len(moments) - expired
    assert min(moment.replace(tzinfo=UTC) for moment in left) == cutoff  # the cutoff stays


def test_sqlite_retention_under_freezegun(sqlite_engine: Engine) -> None:
    sink = ExecutionLogSink(sqlite_engine)
    old, young = records_at(at("2026-01-01")), records_at(at("2026-03-01"))
    sink.write(old + young)
    with freeze_time("2026-04-15"):  # cutoff 2026-01-15
        report = apply_retention(sqlite_engine, utc_now(), 90)
    assert (report.rows_deleted, report.created, report.dropped) == (1, (), ())
    with sqlite_engine.connect() as conn:
        left = conn.execute(sa.select(webhook_executions.c.execution_id)).scalars().all()
    assert [str(execution_id) for execution_id in left] == [young[0].id]


# -- the command -----------------------------------------------------------------------------


def on(database_url: str) -> dict[str, str]:
    """The environment of `relay retention` on `database_url`, keeping 30 days."""
    return relay_env(database_url=database_url, retention_days=30)


def test_command_runs_once_and_dry_runs(
    relay_cli: InProcessCli, engine: Engine, retention_url: str
) -> None:
    dry = relay_cli(on(retention_url), "retention", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would create 3 partitions" in dry.stdout
    assert partition_names(engine) == []
    done = relay_cli(on(retention_url), "retention")
    assert done.returncode == 0, done.stderr
    assert "create 3 partitions" in done.stdout
    assert len(partition_names(engine)) == 3


def test_command_rejects_bad_arguments_and_settings(
    relay_cli: InProcessCli, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    assert relay_cli(on(url), "retention", "--older-than", "3").returncode == 2
    unmigrated = relay_cli(on(url), "retention")
    assert unmigrated.returncode == 2  # one line, no traceback
    assert "database error" in unmigrated.stderr
    assert "Traceback" not in unmigrated.stderr
