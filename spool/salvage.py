"""Checking a spool file, and copying every readable record of a damaged one into a new one.

Both work on a private copy (with its WAL, which may hold the newest commits), so the
damaged file is evidence, never modified; a truncated copy is padded back to the size its
header declares, which lets SQLite read what comes before the cut. Salvage walks each
table by rowid and steps over unreadable stretches, so one bad page costs the rows on it,
not the rest of the file. The per-key counters of drain queues are rebuilt from the records
that were recovered, so the new spool is consistent whatever was lost.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from spool.database import SpoolDatabase

_BATCH = 500
_MAX_SKIP_PROBES = 64  # rowid skips double each probe: 2**64 covers every possible rowid
_COUNTER_SUFFIX = "_keys"  # DurableQueue's per-key counters: rebuilt, not copied


@dataclass(frozen=True)
class CheckReport:
    path: Path
    problems: tuple[str, ...]
    rows_per_table: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class SalvageReport:
    source: Path
    destination: Path
    copied: dict[str, int] = field(default_factory=dict)
    unreadable_stretches: dict[str, int] = field(default_factory=dict)
    unreadable_tables: list[str] = field(default_factory=list)


def check_file(path: Path) -> CheckReport:
    """SQLite's full integrity check plus a row count per table, without writing."""
    with _private_copy(path) as copy:
        return _check_copy(path, copy)


def _check_copy(path: Path, copy: Path) -> CheckReport:
    conn = sqlite3.connect(copy, isolation_level=None)
    try:
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
            problems = tuple(str(r[0]) for r in rows if r[0] != "ok")
        except sqlite3.DatabaseError as exc:
            return CheckReport(path, (f"unreadable: {exc}",), {})
        counts: dict[str, int] = {}
        for table in _tables(conn):
            try:
                counts[table] = int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
            except sqlite3.DatabaseError as exc:
                problems += (f"{table}: {exc}",)
        return CheckReport(path, problems, counts)
    finally:
        conn.close()


def salvage(source: Path, destination: Path) -> SalvageReport:
    """Copy every readable row of `source` into a new spool at `destination`."""
    if destination.exists():
        raise FileExistsError(f"{destination} exists: salvage writes a new spool only")
    report = SalvageReport(source, destination)
    with _private_copy(source) as copy:
        _salvage_copy(copy, report)
    return report


def _salvage_copy(copy: Path, report: SalvageReport) -> None:
    destination = report.destination
    src = sqlite3.connect(copy, isolation_level=None)
    try:
        schema = _schema(src)
        target = SpoolDatabase(destination, check_integrity=False)
        try:
            with target.schema_transaction() as dst:
                for statement in schema.values():
                    dst.execute(statement)
            for table in schema:
                if table.endswith(_COUNTER_SUFFIX) or not _is_table(schema[table]):
                    continue
                _copy_table(src, target, table, report)
            _rebuild_counters(target, schema)
        finally:
            target.close()
    finally:
        src.close()


@contextmanager
def _private_copy(path: Path) -> Iterator[Path]:
    """A scratch copy of the spool and its WAL, padded to its declared size; removed after."""
    if not path.exists():
        raise FileNotFoundError(f"no spool at {path}")
    with tempfile.TemporaryDirectory(prefix="spool-check-", dir=path.parent) as scratch:
        copy = Path(scratch) / "spool.db"
        shutil.copyfile(path, copy)
        wal = Path(f"{path}-wal")
        if wal.exists():
            shutil.copyfile(wal, Path(f"{copy}-wal"))
        _pad_to_declared_size(copy)
        yield copy


def _pad_to_declared_size(path: Path) -> None:
    """SQLite refuses a file shorter than its header says; zero pages it can step over.

    A page cut in the middle is dropped whole: SQLite has no page checksums, so a half page
    would read back as a plausible record with zeros in it.
    """
    with path.open("r+b") as file:
        header = file.read(100)
        if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
            return
        page_size = int.from_bytes(header[16:18], "big") or 65536
        declared = int.from_bytes(header[28:32], "big") * page_size
        actual = file.seek(0, 2)
        if actual < declared:
            whole_pages = actual // page_size * page_size
            file.truncate(whole_pages)
            file.seek(whole_pages)
            file.write(b"\x00" * (declared - whole_pages))


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]


def _schema(conn: sqlite3.Connection) -> dict[str, str]:
    """CREATE statements by object name: tables first, then their indexes."""
    try:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite_%' ORDER BY type DESC"  # tables, then indexes
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise sqlite3.DatabaseError(f"the schema itself is unreadable: {exc}") from exc
    return {str(name): _if_not_exists(str(sql)) for name, sql in rows}


def _if_not_exists(statement: str) -> str:
    for kind in ("CREATE TABLE", "CREATE INDEX"):
        if statement.startswith(kind) and "IF NOT EXISTS" not in statement[:40]:
            return statement.replace(kind, f"{kind} IF NOT EXISTS", 1)
    return statement


def _is_table(statement: str) -> bool:
    return statement.startswith("CREATE TABLE")


def _copy_table(
    src: sqlite3.Connection, target: SpoolDatabase, table: str, report: SalvageReport
) -> None:
    try:
        columns = [str(row[1]) for row in src.execute(f'PRAGMA table_info("{table}")')]
        without_rowid = "WITHOUT ROWID" in _create_sql(src, table).upper()
    except sqlite3.DatabaseError:
        report.unreadable_tables.append(table)
        return
    if without_rowid:
        _copy_whole(src, target, table, columns, report)
        return
    column_list = ", ".join(f'"{c}"' for c in columns)
    insert = _insert_sql(table, columns)
    select = f'SELECT rowid, {column_list} FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT ?'
    after, batch = 0, _BATCH
    copied = skipped = 0
    while True:  # bounded: every pass moves `after` forward or ends
        try:
            rows = src.execute(select, (after, batch)).fetchall()
        except sqlite3.DatabaseError:
            if batch > 1:  # the damage may lie anywhere in the batch: go row by row
                batch = 1
                continue
            resumed = _next_readable_rowid(src, table, after)
            skipped += 1
            if resumed is None:
                break
            after = resumed - 1
            continue
        if not rows:
            break
        target.write(partial(_execute_many, statement=insert, rows=[r[1:] for r in rows]))
        copied += len(rows)
        after = int(rows[-1][0])
        batch = min(_BATCH, batch * 2)  # back to whole batches once past the damage
    report.copied[table] = copied
    if skipped:
        report.unreadable_stretches[table] = skipped


def _next_readable_rowid(src: sqlite3.Connection, table: str, after: int) -> int | None:
    """The first rowid past an unreadable stretch that starts after `after`.

    Probes ever further ahead (doubling) until a read succeeds, then narrows back (binary
    search) so the rows just past the damage are not skipped.
    """
    failed, step = after, 1
    for _ in range(_MAX_SKIP_PROBES):
        found = _first_rowid_after(src, table, after + step)
        if found is not _UNREADABLE:
            low, high = failed, after + step  # reading after `low` fails, after `high` works
            while high - low > 1:
                middle = (low + high) // 2
                probe = _first_rowid_after(src, table, middle)
                if probe is _UNREADABLE:
                    low = middle
                else:
                    high, found = middle, probe
            return found if isinstance(found, int) else None
        failed, step = after + step, step * 2
    return None


_UNREADABLE = object()


def _first_rowid_after(src: sqlite3.Connection, table: str, rowid: int) -> object:
    """The first rowid after `rowid` (None at the end), or _UNREADABLE."""
    try:
        row = src.execute(
            f'SELECT rowid FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT 1', (rowid,)
        ).fetchone()
    except sqlite3.DatabaseError:
        return _UNREADABLE
    return None if row is None else int(row[0])


def _copy_whole(
    src: sqlite3.Connection,
    target: SpoolDatabase,
    table: str,
    columns: list[str],
    report: SalvageReport,
) -> None:
    """Small WITHOUT ROWID tables (seen keys): all or what reads before the first bad page."""
    column_list = ", ".join(f'"{c}"' for c in columns)
    rows: list[tuple[object, ...]] = []
    try:
        for row in src.execute(f'SELECT {column_list} FROM "{table}"'):
            rows.append(tuple(row))
    except sqlite3.DatabaseError:
        report.unreadable_stretches[table] = 1
    target.write(partial(_execute_many, statement=_insert_sql(table, columns), rows=rows))
    report.copied[table] = len(rows)


def _execute(conn: sqlite3.Connection, *, statement: str) -> None:
    conn.execute(statement)


def _execute_many(
    conn: sqlite3.Connection, *, statement: str, rows: list[tuple[object, ...]]
) -> None:
    conn.executemany(statement, rows)


def _insert_sql(table: str, columns: list[str]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return f'INSERT OR IGNORE INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'


def _create_sql(src: sqlite3.Connection, table: str) -> str:
    row = src.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    return str(row[0]) if row else ""


def _rebuild_counters(target: SpoolDatabase, schema: dict[str, str]) -> None:
    """Per-key counters of every drain queue, recomputed from the recovered records."""
    for table in schema:
        if not table.endswith(_COUNTER_SUFFIX):
            continue
        records = table[: -len(_COUNTER_SUFFIX)] + "_records"
        if records not in schema:
            continue
        rebuild = (
            f'INSERT INTO "{table}" (key, pending, oldest_enqueued_at) '
            f'SELECT key, count(*), min(enqueued_at) FROM "{records}" GROUP BY key'
        )
        target.write(partial(_execute, statement=rebuild))
