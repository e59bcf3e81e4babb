"""The spool file: one SQLite database in WAL mode, opened safely, written by group commit.

Every write goes through `SpoolDatabase.write`, which runs the caller's operation inside a
`BEGIN IMMEDIATE` transaction and returns only after COMMIT (one fsync with
``synchronous=FULL``). Concurrent writers are batched by a leader/follower group commit: the
first waiting caller commits the operations of everyone queued behind it in one transaction,
each inside its own SAVEPOINT so one failing operation does not undo the others.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, cast

from spool.errors import SpoolCorruptError, SpoolError, SpoolFullError, SpoolPermissionError

log = logging.getLogger(__name__)

T = TypeVar("T")
Synchronous = Literal["FULL", "NORMAL"]
Operation = Callable[[sqlite3.Connection], T]

_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600
_WAL_SIZE_LIMIT = 64 * 1024 * 1024
LOCK_POLL_FIRST = 0.00005  # seconds before the first retry of a busy BEGIN IMMEDIATE
LOCK_POLL_MAX = 0.001  # ... doubling up to this
GATHER_WINDOW = 0.0002  # seconds a leader waits for each expected writer (~ an fsync's 1/2)


@dataclass
class WriteOutcome(Generic[T]):
    """One operation waiting for (or finished by) a group commit; `get` gives its result
    or raises its error."""

    operation: Operation[T]
    thread: int
    isolated: bool
    done: bool = False
    result: T | None = None
    error: BaseException | None = None

    def get(self) -> T:
        if self.error is not None:
            raise self.error
        return cast(T, self.result)


@dataclass
class _GroupCommitState:
    """Queue of waiting writes and whether a leader is committing right now."""

    queue: list[WriteOutcome[Any]] = field(default_factory=list)
    committing: bool = False
    leader: int | None = None  # thread committing now: a nested write would deadlock
    gathering: bool = False  # the leader is waiting for more writers to join its batch
    last_writers: set[int] = field(default_factory=set)
    condition: threading.Condition = field(default_factory=threading.Condition)


class SpoolDatabase:
    """A durable SQLite file shared by every queue of one process.

    Reads use their own connection and stay short (one statement, autocommit), so they never
    pin the WAL and checkpoints can always reset it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        max_bytes: int | None = None,
        busy_timeout_seconds: float = 10.0,
        check_integrity: bool = True,
        autocheckpoint_pages: int = 1000,
    ) -> None:
        """`autocheckpoint_pages`: SQLite's automatic checkpoint, run by whichever commit
        pushes the WAL past that many pages, inside that writer's call. A process that
        checkpoints on its own schedule (`checkpoint(truncate=False)`) raises it, so no
        latency-sensitive write pays for one."""
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous
        self.max_bytes = max_bytes
        self._busy_timeout_ms = int(busy_timeout_seconds * 1000)
        _create_private(self.path)
        self._writer = self._connect()
        try:
            if check_integrity:
                _check_integrity(self._writer, self.path)
            # After the integrity check: a damaged spool is the graver news.
            _check_private(self.path)
            self._enable_wal()
            self._writer.execute(f"PRAGMA wal_autocheckpoint = {autocheckpoint_pages}")
        except BaseException:
            self._writer.close()
            raise
        # The writer waits for the write lock in `_begin_immediate`, not in SQLite.
        self._writer.execute("PRAGMA busy_timeout = 0")
        self._reader = self._connect()
        self._read_lock = threading.Lock()
        self._group = _GroupCommitState()
        self.commits = 0  # transactions committed by `write`: group commit's effect, observable
        self._after_commit: list[Callable[[], None]] = []  # touched only by the leader
        self._used_at_begin: int | None = None
        self._page_size = int(self._writer.execute("PRAGMA page_size").fetchone()[0])

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            # synchronous is per connection: set it on every one.
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        except sqlite3.OperationalError as exc:
            raise SpoolError(f"cannot open spool {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, str(exc)) from exc
        return conn

    def _enable_wal(self) -> None:
        # Must run outside a transaction, or SQLite silently keeps the old journal mode.
        mode = self._writer.execute("PRAGMA journal_mode = wal").fetchone()[0]
        if str(mode).lower() != "wal":
            raise SpoolError(f"spool {self.path}: could not enable WAL (journal_mode={mode})")
        # Safety net behind the explicit checkpoints: shrink a WAL left large when it restarts.
        self._writer.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
        # Debian builds SQLite with secure_delete ON, which rewrites every deleted row with
        # zeros: it tripled the cost of removing drained rows. FAST still zeroes them where
        # that costs no extra I/O (the pages being written anyway), so drained phone numbers
        # mostly do not linger, at a third of the price.
        self._writer.execute("PRAGMA secure_delete = FAST")

    def close(self) -> None:
        """Checkpoint and close (after any commit in progress)."""
        with self._exclusive_writer() as writer:
            try:
                self.checkpoint()
            except SpoolError as exc:
                log.warning("spool %s: checkpoint on close failed: %s", self.path, exc)
            writer.close()
        with self._read_lock:
            self._reader.close()

    @contextmanager
    def _exclusive_writer(self) -> Iterator[sqlite3.Connection]:
        """The writer connection once no group commit uses it; new writes wait meanwhile."""
        with self._group.condition:  # an RLock: the holder may re-enter
            while self._group.committing:
                self._group.condition.wait()
            yield self._writer

    # -- writing -------------------------------------------------------------------------------

    def write(self, operation: Operation[T], *, isolated: bool = True) -> T:
        """Run `operation` in a committed transaction; return its result once durable.

        The operation may be batched with others into one transaction (group commit). It runs
        inside a SAVEPOINT: if it raises, only its own changes are undone and the error is
        re-raised to this caller alone. `isolated=False` skips the savepoint (a few
        microseconds per call on the hot append path): only for operations that cannot fail
        after their first change, except with errors that abort the whole transaction.
        """
        (outcome,) = self.write_each([operation], isolated=isolated)
        return outcome.get()

    def write_each(
        self, operations: Sequence[Operation[T]], *, isolated: bool = True
    ) -> list[WriteOutcome[T]]:
        """`write` for several operations at once, each with its own outcome: they join the
        same transaction, and one failing does not undo the others (with `isolated`). One
        call for a batch spares a thread per operation (intake's requests)."""
        me = threading.get_ident()
        items = [WriteOutcome(operation, me, isolated) for operation in operations]
        if not items:
            return items
        group = self._group
        if group.leader == me:
            raise RuntimeError("SpoolDatabase.write called from inside a write operation")
        with group.condition:
            group.queue.extend(items)  # at once: one batch takes all of them or none
            if group.gathering:
                group.condition.notify_all()  # the leader is waiting for company
            while not items[0].done and group.committing:
                group.condition.wait()
            if items[0].done:
                return items
            group.committing = True
            group.leader = me
            self._gather(group)
            batch, group.queue = group.queue, []
            group.last_writers = {queued.thread for queued in batch}
        self._commit_as_leader(batch)
        return items

    def try_write_each(
        self, operations: Sequence[Operation[T]], *, isolated: bool = True
    ) -> list[WriteOutcome[T]] | None:
        """`write_each` on the calling thread if the write lock is free now; else None at
        once, with nothing done. For an event loop, which must not wait for the lock (up to
        the busy timeout) and hands the batch to a worker thread instead.

        Committing on the loop's own thread spares the GIL hand-offs of a worker thread:
        the sqlite3 module lets go of the GIL around every statement, and a worker thread
        taking it back from a busy loop used about 0.4 ms of CPU per intake event at 500
        events/s (measured per thread), where the transaction alone costs about 0.1 ms.
        """
        me = threading.get_ident()
        items = [WriteOutcome(operation, me, isolated) for operation in operations]
        group = self._group
        with group.condition:
            if group.committing or group.queue:  # a thread is writing: join it there
                return None
            group.committing = True
            group.leader = me
        return items if self._commit_as_leader(items, wait_for_lock=False) else None

    def _commit_as_leader(
        self, batch: list[WriteOutcome[Any]], *, wait_for_lock: bool = True
    ) -> bool:
        """`_commit_batch` by the thread that took the group's lead; the lead is handed
        back whatever happens, and the writers waiting for it are woken."""
        try:
            return self._commit_batch(batch, wait_for_lock=wait_for_lock)
        finally:
            with self._group.condition:
                self._group.committing = False
                self._group.leader = None
                self._group.condition.notify_all()

    @staticmethod
    def _gather(group: _GroupCommitState) -> None:
        """Wait briefly for writers of the last batch that are not queued yet.

        Without this, N busy writers settle into alternating batches of about N/2: while one
        half commits, the other half queues, and the next leader leaves at once with only
        that half. Waiting up to `GATHER_WINDOW` for the expected writers (those of the last
        batch, known by thread) doubles the records per fsync; a lone writer never waits.
        Bounded without reading a clock: each wait either brings a writer or ends it.
        """
        expected = group.last_writers | {queued.thread for queued in group.queue}
        group.gathering = True
        try:
            while not expected <= {queued.thread for queued in group.queue}:
                before = len(group.queue)
                group.condition.wait(GATHER_WINDOW)
                if len(group.queue) == before:
                    break
        finally:
            group.gathering = False

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE, waiting up to the busy timeout for another process's writer.

        SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms between tries. With intake
        and the dispatcher in two processes on one spool, that made intake transactions wait
        up to 330 ms for a lock held about a millisecond (measured). Trying again at most
        every `LOCK_POLL_MAX` seconds takes the lock soon after it is free. The bound counts
        the sleeps, so a frozen test clock cannot make it endless.
        """
        delay, waited = LOCK_POLL_FIRST, 0.0
        while not self._try_begin_immediate(conn):
            if waited >= self._busy_timeout_ms / 1000:
                conn.execute("BEGIN IMMEDIATE")  # a last try: raises SQLite's "locked" error
                return
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, LOCK_POLL_MAX)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """From inside a write operation: run `callback` once its transaction has committed.

        Dropped if the operation fails or the transaction rolls back. Callbacks run on the
        committing thread, so they must be quick (waking a scheduler, counting).
        """
        if self._group.leader != threading.get_ident():
            raise RuntimeError("after_commit is only valid inside a write operation")
        self._after_commit.append(callback)

    def _commit_batch(self, batch: list[WriteOutcome[Any]], *, wait_for_lock: bool = True) -> bool:
        """Run and commit the batch, each item getting its outcome. False, with nothing done,
        when not `wait_for_lock` and another process holds the write lock."""
        conn = self._writer
        self._after_commit = []
        self._used_at_begin = None
        decided = True
        try:
            if wait_for_lock:
                self._begin_immediate(conn)
            elif not self._try_begin_immediate(conn):
                decided = False
                return False
            for item in batch:
                self._run_in_savepoint(conn, item)
            conn.execute("COMMIT")
            self.commits += 1
            self._run_after_commit()
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = translate_sqlite_error(exc, self.path)
            for item in batch:
                item.result, item.error = None, error
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for item in batch:
                item.result, item.error = None, exc
            raise
        finally:
            if decided:
                for item in batch:
                    item.done = True
        return True

    @staticmethod
    def _try_begin_immediate(conn: sqlite3.Connection) -> bool:
        """BEGIN IMMEDIATE once: False if another connection holds the write lock."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                return False
            raise
        return True

    def _run_after_commit(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # the data is committed; a failed notification must not undo it
                log.exception("spool %s: after-commit callback failed", self.path)

    def _run_in_savepoint(self, conn: sqlite3.Connection, item: WriteOutcome[Any]) -> None:
        if not item.isolated:  # by contract it failed before changing anything, if at all
            try:
                item.result = item.operation(conn)
            except sqlite3.Error:
                raise  # the transaction is unusable: fail the whole batch
            except Exception as exc:
                item.error = exc
            return
        conn.execute("SAVEPOINT spool_op")
        callbacks_before = len(self._after_commit)
        try:
            item.result = item.operation(conn)
        except Exception as exc:
            del self._after_commit[callbacks_before:]
            conn.execute("ROLLBACK TO spool_op")
            conn.execute("RELEASE spool_op")
            item.error = (
                translate_sqlite_error(exc, self.path) if isinstance(exc, sqlite3.Error) else exc
            )
            return
        conn.execute("RELEASE spool_op")

    def ensure_capacity(self, conn: sqlite3.Connection) -> None:
        """Raise `SpoolFullError` when the stored data is past `max_bytes`.

        Called by operations that add new work; operations that finish work never are, so the
        drain and deliveries keep going while intake is refused.
        """
        if self.max_bytes is None:
            return
        if self._used_at_begin is None:  # once per transaction: a batch may overshoot a little
            self._used_at_begin = self._used_bytes(conn)
        used = self._used_at_begin
        if used >= self.max_bytes:
            raise SpoolFullError(
                f"spool {self.path} holds {used} bytes, at its bound of {self.max_bytes}"
            )

    def _used_bytes(self, conn: sqlite3.Connection) -> int:
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * self._page_size

    # -- reading and maintenance ---------------------------------------------------------------

    def read(self, query: Operation[T]) -> T:
        """Run a short read on the reader connection (its own implicit transaction)."""
        with self._read_lock:
            try:
                return query(self._reader)
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc, self.path) from exc

    def used_bytes(self) -> int:
        """Bytes of live data in the spool (pages in use, free pages excluded)."""
        return self.read(self._used_bytes)

    def file_bytes(self) -> int:
        """Bytes on disk: the database file plus its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            candidate = Path(f"{self.path}{suffix}")
            if candidate.exists():
                total += candidate.stat().st_size
        return total

    def checkpoint(self, *, truncate: bool = True) -> None:
        """Copy the WAL into the database, so the WAL cannot grow unbounded.

        TRUNCATE (at close, after a flush) also empties the WAL file, but holds the write
        lock meanwhile: measured 8-16 ms per checkpoint under load, which every writer (in
        any process) waits out. `truncate=False` runs a PASSIVE checkpoint, which blocks no
        writer; the next writer then starts the WAL over (`journal_size_limit` trims it).
        """
        mode = "TRUNCATE" if truncate else "PASSIVE"
        with self._exclusive_writer() as writer:
            try:
                writer.execute(f"PRAGMA wal_checkpoint({mode})")
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc, self.path) from exc

    @contextmanager
    def schema_transaction(self) -> Iterator[sqlite3.Connection]:
        """Yield the writer inside BEGIN IMMEDIATE, for one-off schema set-up at open."""
        with self._exclusive_writer() as conn:
            self._begin_immediate(conn)
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


def translate_sqlite_error(exc: BaseException, path: Path) -> SpoolError:
    """Map sqlite3 errors to spool errors; a full disk becomes `SpoolFullError`."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL:
        return SpoolFullError(f"spool {path}: disk full ({exc})")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return SpoolCorruptError(f"spool {path} is corrupt: {exc}")
    return SpoolError(f"spool {path}: {exc}")


def ensure_private_directory(directory: Path) -> None:
    """Create `directory` readable by its owner only (0700); leave an existing one alone."""
    if not directory.exists():
        directory.mkdir(mode=_PRIVATE_DIR, parents=True, exist_ok=True)
        os.chmod(directory, _PRIVATE_DIR)  # mkdir's mode is filtered by the umask


def _create_private(path: Path) -> None:
    """Create the directory (0700) and the file (0600) if missing; never replace a file."""
    ensure_private_directory(path.parent)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, _PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, _PRIVATE_FILE)


def _check_private(path: Path) -> None:
    """Refuse a spool that users other than its owner may read or write.

    Mode bits only (not access checks), so it holds for root too. SQLite gives the -wal and
    -shm files the database file's mode, but a later chmod may not have.
    """
    expected = [(path.parent, _PRIVATE_DIR)]
    expected += [(Path(f"{path}{suffix}"), _PRIVATE_FILE) for suffix in ("", "-wal", "-shm")]
    for candidate, private in expected:
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            kind = "directory" if private == _PRIVATE_DIR else "file"
            raise SpoolPermissionError(
                f"spool {kind} {candidate} has mode {mode:o}: other users may read or change "
                f"what the spool holds, so it refuses to open. Fix: chmod {private:o} {candidate}"
            )


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a damaged spool loudly instead of starting empty over it."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise _corrupt(path, str(exc)) from exc
    problems = [str(row[0]) for row in rows if row[0] != "ok"]
    if problems:
        raise _corrupt(path, "; ".join(problems[:5]))


def _corrupt(path: Path, detail: str) -> SpoolCorruptError:
    return SpoolCorruptError(
        f"spool {path} failed its integrity check ({_first_line(detail)}); it was left untouched"
    )


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("***")]
    return (lines[0] if lines else text)[:200]
