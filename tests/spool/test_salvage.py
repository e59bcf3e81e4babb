"""`check_file` and `salvage` on real damaged spool files: read-only on the damaged one,
every readable record copied, and the new spool consistent."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from spool import DurableQueue, ScheduledQueue, SeenKeys, SpoolDatabase, check_file, salvage

RECORDS = 3000


def build_spool(path: Path) -> dict[str, bytes]:
    """A spool with an outbox, an inbox and seen keys; returns the outbox payloads by id."""
    db = SpoolDatabase(path)
    outbox, inbox = DurableQueue(db, "outbox"), ScheduledQueue(db, "inbox")
    seen = SeenKeys(db, "intake", ttl=timedelta(hours=24))
    payloads: dict[str, bytes] = {}

    def fill(conn: object) -> None:
        import sqlite3

        assert isinstance(conn, sqlite3.Connection)
        for n in range(RECORDS):
            payload = f"record {n} ".encode() + b"x" * 600
            receipt = outbox.append_in(conn, f"company-{n % 7}", payload)
            payloads[receipt.record_id] = payload
        for n in range(50):
            inbox.enqueue_in(conn, "http://127.0.0.1:9", f"delivery {n}".encode())
            seen.remember_in(conn, "company-0", f"event-{n}", b"{}", outbox._clock())

    db.write(fill)
    db.close()
    return payloads


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


PAGE = 4096
TABLE_LEAF = 0x0D  # SQLite's page-type byte of a table b-tree leaf


def free_pages(data: bytes) -> set[int]:
    """Numbers (1-based) of the pages on the database's freelist, read from its trunk pages.

    A freed page keeps its old bytes, so it can still look like a table leaf; damaging one
    damages nothing, and a spool whose rows were drained has many."""
    free: set[int] = set()
    trunk = int.from_bytes(data[32:36], "big")
    while trunk and trunk not in free:
        offset = (trunk - 1) * PAGE
        free.add(trunk)
        leaves = int.from_bytes(data[offset + 4 : offset + 8], "big")
        for n in range(leaves):
            start = offset + 8 + 4 * n
            free.add(int.from_bytes(data[start : start + 4], "big"))
        trunk = int.from_bytes(data[offset : offset + 4], "big")
    return free


def damage_leaf_pages(path: Path, count: int) -> int:
    """Overwrite `count` table-leaf pages in use from the middle of the file; return rows
    lost at most (a leaf holds the rows stored on it, nothing else)."""
    data = bytearray(path.read_bytes())
    pages = len(data) // PAGE
    unused = free_pages(data)
    damaged = 0
    for page in range(pages // 2, pages):
        offset = page * PAGE
        if data[offset] == TABLE_LEAF and page + 1 not in unused and damaged < count:
            data[offset : offset + PAGE] = b"\xa5" * PAGE
            damaged += 1
    assert damaged == count
    path.write_bytes(bytes(data))
    return count * (PAGE // 500)  # rows are over 600 bytes: at most 8 on a page


def test_a_healthy_spool_checks_ok(spool_path: Path) -> None:
    build_spool(spool_path)
    report = check_file(spool_path)
    assert report.ok
    assert report.rows_per_table["outbox_records"] == RECORDS
    assert report.rows_per_table["inbox_items"] == 50


def test_a_damaged_spool_is_reported_and_salvaged_without_touching_it(
    spool_path: Path, tmp_path: Path
) -> None:
    payloads = build_spool(spool_path)
    at_most_lost = damage_leaf_pages(spool_path, 3)
    before = digest(spool_path)
    assert not check_file(spool_path).ok

    rescued = tmp_path / "rescued" / "spool.db"
    report = salvage(spool_path, rescued)
    assert digest(spool_path) == before  # evidence left as it was

    db = SpoolDatabase(rescued)  # opens: the integrity check passes
    outbox = DurableQueue(db, "outbox")
    recovered = outbox.fetch_oldest(RECORDS * 2)
    assert RECORDS - at_most_lost <= len(recovered) < RECORDS  # only the damaged pages' rows
    assert all(payloads[r.id] == r.payload for r in recovered)  # nothing garbled
    assert sum(b.pending for b in outbox.backlog()) == len(recovered)  # counters rebuilt
    assert report.copied["outbox_records"] == len(recovered)
    assert ScheduledQueue(db, "inbox").count() == 50
    db.close()
    assert check_file(rescued).ok


def test_a_truncated_spool_keeps_what_comes_before_the_cut(
    spool_path: Path, tmp_path: Path
) -> None:
    payloads = build_spool(spool_path)
    data = spool_path.read_bytes()
    spool_path.write_bytes(data[: int(len(data) * 0.7)])
    rescued = tmp_path / "rescued.db"
    salvage(spool_path, rescued)
    db = SpoolDatabase(rescued)
    recovered = DurableQueue(db, "outbox").fetch_oldest(RECORDS * 2)
    assert 0 < len(recovered) < RECORDS
    assert all(payloads[r.id] == r.payload for r in recovered)
    db.close()


def test_salvage_never_overwrites(spool_path: Path, tmp_path: Path) -> None:
    build_spool(spool_path)
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        salvage(spool_path, existing)
    assert existing.read_bytes() == b"keep me"
