"""Database errors are classified by SQLSTATE into transient, record and configuration errors."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors as pg

from relay.db.engine import make_engine
from relay.execution_log.errors import classify
from relay.execution_log.sink import ExecutionLogSink
from spool import (
    ConfigSinkError,
    Drainer,
    DrainPolicy,
    DurableQueue,
    Outcome,
    RecordSinkError,
    SinkError,
    TransientSinkError,
)
from tests.support.pg_cluster import PgCluster
from tests.support.relay_data import append_results


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (pg.ConnectionException(), TransientSinkError),  # 08000
        (pg.ConnectionFailure(), TransientSinkError),  # 08006
        (pg.SerializationFailure(), TransientSinkError),  # 40001
        (pg.DeadlockDetected(), TransientSinkError),  # 40P01
        (pg.TooManyConnections(), TransientSinkError),  # 53300
        (pg.AdminShutdown(), TransientSinkError),  # 57P01
        (pg.CannotConnectNow(), TransientSinkError),  # 57P03
        (pg.QueryCanceled(), TransientSinkError),  # 57014: statement timeout
        (psycopg.OperationalError("connection is lost"), TransientSinkError),  # no sqlstate
        (pg.StringDataRightTruncation(), RecordSinkError),  # 22001
        (pg.NumericValueOutOfRange(), RecordSinkError),  # 22003
        (pg.InvalidTextRepresentation(), RecordSinkError),  # 22P02
        (pg.UniqueViolation(), RecordSinkError),  # 23505
        (psycopg.DataError("NUL bytes"), RecordSinkError),  # client-side, no sqlstate
        (pg.InvalidPassword(), ConfigSinkError),  # 28P01
        (pg.UndefinedTable(), ConfigSinkError),  # 42P01
        (pg.InsufficientPrivilege(), ConfigSinkError),  # 42501
        (pg.InvalidCatalogName(), ConfigSinkError),  # 3D000: no such database
        (sqlite3.IntegrityError("UNIQUE constraint failed"), RecordSinkError),
        (sqlite3.OperationalError("no such table: webhook_executions"), ConfigSinkError),
        (ConnectionResetError(), TransientSinkError),
    ],
)
def test_classification(error: Exception, expected: type[SinkError]) -> None:
    assert type(classify(error)) is expected


def test_a_missing_table_is_a_loud_configuration_error_retried_slowly(
    pg_cluster: PgCluster, outbox: DurableQueue, caplog: pytest.LogCaptureFixture
) -> None:
    pg_cluster.create_database("not_migrated")
    engine = make_engine(pg_cluster.url("not_migrated"))
    drainer = Drainer(outbox, ExecutionLogSink(engine), DrainPolicy())
    append_results(outbox, uuid.uuid4(), 50)
    now = datetime.now(UTC)
    with caplog.at_level(logging.ERROR, logger="spool.drain"):
        report = drainer.drain_once(now)
    engine.dispose()
    assert report.outcome is Outcome.CONFIG_ERROR
    assert report.retry_at == now + timedelta(seconds=60)
    assert "42P01" in (report.error or "")
    assert any("configuration error" in r.getMessage() for r in caplog.records)
    assert outbox.stats().pending == 50
