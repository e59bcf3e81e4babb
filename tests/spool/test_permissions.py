"""The spool stays private: created 0600 in a 0700 directory, refused when others may read it.

The checks read mode bits, so they hold when the tests run as root (as CI does).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from spool import DurableQueue, SpoolDatabase, SpoolError, SpoolPermissionError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def make_spool(path: Path) -> None:
    db = SpoolDatabase(path)
    DurableQueue(db, "outbox").append("k", b"x")
    db.close()


def test_the_files_a_spool_makes_pass_its_own_check(spool_path: Path) -> None:
    make_spool(spool_path)
    db = SpoolDatabase(spool_path)
    DurableQueue(db, "outbox").append("k", b"x")
    wal = Path(f"{spool_path}-wal")
    assert (mode(spool_path.parent), mode(spool_path), mode(wal)) == (0o700, 0o600, 0o600)
    SpoolDatabase(spool_path).close()  # -wal and -shm present, made by SQLite: still private
    db.close()


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_file_others_may_read_or_write_is_refused_with_the_fix(
    spool_path: Path, file_mode: int
) -> None:
    make_spool(spool_path)
    os.chmod(spool_path, file_mode)
    with pytest.raises(SpoolPermissionError) as refused:
        SpoolDatabase(spool_path)
    message = str(refused.value)
    assert str(spool_path) in message
    assert f"mode {file_mode:o}" in message
    assert f"chmod 600 {spool_path}" in message
    assert isinstance(refused.value, SpoolError)  # the CLI turns it into exit 2


@pytest.mark.parametrize("dir_mode", [0o755, 0o750, 0o701])
def test_a_directory_others_may_enter_is_refused_with_the_fix(
    spool_path: Path, dir_mode: int
) -> None:
    make_spool(spool_path)
    os.chmod(spool_path.parent, dir_mode)
    with pytest.raises(SpoolPermissionError, match=f"chmod 700 {spool_path.parent}"):
        SpoolDatabase(spool_path)


def test_a_wal_file_others_may_read_is_refused(spool_path: Path) -> None:
    db = SpoolDatabase(spool_path)
    DurableQueue(db, "outbox").append("k", b"x")
    wal = Path(f"{spool_path}-wal")
    os.chmod(wal, 0o644)  # the first connection keeps the WAL while it is open
    with pytest.raises(SpoolPermissionError, match=f"chmod 600 {wal}"):
        SpoolDatabase(spool_path)
    db.close()


def test_a_new_spool_in_an_existing_open_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    os.chmod(directory, 0o755)
    with pytest.raises(SpoolPermissionError, match="chmod 700"):
        SpoolDatabase(directory / "spool.db")
