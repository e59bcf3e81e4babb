"""Recovery jobs' durable state, in tables of the spool file beside the inbox.

A job resends, batch by batch, every message that failed for good to one webhook in a
window. Its progress (where the next batch starts, counts) and the messages it has resent
are written in the same spool transaction as the resends' inbox deliveries: after a crash
at any instant the job resumes from its last committed batch, and a message it resent is
never resent by it again. (A spool salvaged after corruption keeps its deliveries, not its
jobs.)
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

from relay.execution_log.rows import json_value
from spool import Clock, SpoolDatabase, utc_now
from spool.clock import from_micros, to_micros

JobState = Literal["running", "done", "failed"]

_COLUMNS = (
    "id, webhook_id, company_id, since, until, status, state, cursor, rows_scanned, "
    "messages_sent, created_at, updated_at, finished_at, error"
)


@dataclass(frozen=True)
class RecoveryJob:
    id: str
    webhook_id: uuid.UUID
    company_id: uuid.UUID
    since: datetime
    until: datetime
    status: str  # of the attempts recovered: "failed"
    state: JobState
    cursor: str | None  # the search cursor the next batch starts at (None: from the newest)
    rows_scanned: int  # failed attempts looked at
    messages_sent: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None

    def as_json(self) -> dict[str, Any]:
        """What a job's status shows (its cursor is its own business)."""
        shown = {f.name: json_value(getattr(self, f.name)) for f in fields(self)}
        del shown["cursor"]
        return {"kind": "recover"} | shown


class RecoveryJobs:
    """Create, read and advance recovery jobs; `*_in(conn, ...)` take part in a caller's
    spool transaction (`SpoolDatabase.write`)."""

    def __init__(self, spool: SpoolDatabase, *, clock: Clock = utc_now) -> None:
        self.spool = spool
        self._clock = clock
        with spool.schema_transaction() as conn:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS recovery_jobs (
                    id TEXT PRIMARY KEY,
                    webhook_id TEXT NOT NULL,
                    company_id TEXT NOT NULL,
                    since INTEGER NOT NULL,
                    until INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    state TEXT NOT NULL,
                    cursor TEXT,
                    rows_scanned INTEGER NOT NULL DEFAULT 0,
                    messages_sent INTEGER NOT NULL DEFAULT 0,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    finished_at INTEGER,
                    error TEXT) WITHOUT ROWID"""
            )
            conn.execute(
                """CREATE TABLE IF NOT EXISTS recovery_sent (
                    job_id TEXT NOT NULL,
                    message_id TEXT NOT NULL,
                    PRIMARY KEY (job_id, message_id)) WITHOUT ROWID"""
            )

    def create(
        self,
        webhook_id: uuid.UUID,
        company_id: uuid.UUID,
        since: datetime,
        until: datetime,
        status: str,
    ) -> RecoveryJob:
        now = to_micros(self._clock())
        job_id = f"job_{uuid.uuid4().hex}"
        self.spool.write(
            lambda conn: conn.execute(
                """INSERT INTO recovery_jobs (id, webhook_id, company_id, since, until, status,
                    state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)""",
                (
                    job_id,
                    str(webhook_id),
                    str(company_id),
                    to_micros(since),
                    to_micros(until),
                    status,
                    now,
                    now,
                ),
            )
        )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> RecoveryJob | None:
        rows = self._select("WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    def unfinished(self) -> list[RecoveryJob]:
        return self._select("WHERE state = 'running' ORDER BY created_at", ())

    def claim_in(self, conn: sqlite3.Connection, job_id: str, message_id: str) -> bool:
        """Record that the job resends `message_id` now; False if it did already."""
        inserted = conn.execute(
            "INSERT OR IGNORE INTO recovery_sent (job_id, message_id) VALUES (?, ?)",
            (job_id, message_id),
        )
        return inserted.rowcount == 1

    def advance_in(
        self,
        conn: sqlite3.Connection,
        job_id: str,
        *,
        cursor: str | None,
        scanned: int,
        sent: int,
    ) -> None:
        """A batch is done: the next starts at `cursor`; None means the job is finished."""
        now = to_micros(self._clock())
        conn.execute(
            """UPDATE recovery_jobs SET cursor = ?, rows_scanned = rows_scanned + ?,
                messages_sent = messages_sent + ?, updated_at = ?,
                state = CASE WHEN ? IS NULL THEN 'done' ELSE state END,
                finished_at = CASE WHEN ? IS NULL THEN ? ELSE finished_at END
            WHERE id = ?""",
            (cursor, scanned, sent, now, cursor, cursor, now, job_id),
        )

    def fail(self, job_id: str, error: str) -> None:
        """The job cannot go on (its webhook was deleted or disabled meanwhile)."""
        now = to_micros(self._clock())
        self.spool.write(
            lambda conn: conn.execute(
                """UPDATE recovery_jobs SET state = 'failed', error = ?, updated_at = ?,
                    finished_at = ? WHERE id = ?""",
                (error, now, now, job_id),
            )
        )

    def _select(self, where: str, params: tuple[object, ...]) -> list[RecoveryJob]:
        rows = self.spool.read(
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS} FROM recovery_jobs {where}", params
            ).fetchall()
        )
        return [_job(row) for row in rows]


def _job(row: tuple[Any, ...]) -> RecoveryJob:
    (job_id, webhook, company, since, until, status, state, cursor) = row[:8]
    scanned, sent, created, updated, finished, error = row[8:]
    return RecoveryJob(
        job_id,
        uuid.UUID(webhook),
        uuid.UUID(company),
        from_micros(since),
        from_micros(until),
        status,
        state,
        cursor,
        scanned,
        sent,
        from_micros(created),
        from_micros(updated),
        None if finished is None else from_micros(finished),
        error,
    )
