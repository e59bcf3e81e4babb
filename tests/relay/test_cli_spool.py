"""`relay spool check | salvage | dead-letters ...` as an operator runs them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relay.runtime.wiring import EXECUTION_LOG_QUEUE
from spool import DurableQueue, SpoolDatabase
from tests.spool.test_salvage import build_spool, damage_leaf_pages, digest
from tests.support.environment import relay_env
from tests.support.relay_command import CliResult, InProcessCli

SpoolCommand = Callable[..., CliResult]


@pytest.fixture
def relay(relay_cli: InProcessCli) -> SpoolCommand:
    """`relay(spool, ARGS...)`: `relay spool ARGS...` in the test process, on the spool at
    `spool` (its execution log a SQLite file beside it)."""

    def spool_command(spool: Path, *args: str) -> CliResult:
        env = relay_env(spool_path=spool, database_url=f"sqlite:///{spool}.log.db")
        return relay_cli(env, "spool", *args)

    return spool_command


def test_check_passes_a_healthy_spool(relay: SpoolCommand, spool_path: Path) -> None:
    build_spool(spool_path)
    result = relay(spool_path, "check")
    assert result.returncode == 0, result.stderr
    assert "ok (" in result.stdout
    assert "outbox_records 3000" in result.stdout


def test_check_reports_damage_and_the_way_out_without_touching_the_file(
    relay: SpoolCommand, spool_path: Path, tmp_path: Path
) -> None:
    build_spool(spool_path)
    damage_leaf_pages(spool_path, 2)
    before = digest(spool_path)
    checked = relay(spool_path, "check")
    assert checked.returncode == 2
    assert "is damaged" in checked.stderr and "relay spool salvage" in checked.stderr
    assert "Traceback" not in checked.stderr
    assert digest(spool_path) == before

    rescued = tmp_path / "rescued.db"
    salvaged = relay(spool_path, "salvage", str(rescued))
    assert salvaged.returncode == 0, salvaged.stderr
    assert "outbox_records:" in salvaged.stdout and "unreadable stretch" in salvaged.stdout
    assert digest(spool_path) == before
    assert relay(rescued, "check").returncode == 0
    status = relay(rescued, "status")
    assert "pending: " in status.stdout


def test_salvage_refuses_to_overwrite(
    relay: SpoolCommand, spool_path: Path, tmp_path: Path
) -> None:
    build_spool(spool_path)
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"mine")
    result = relay(spool_path, "salvage", str(existing))
    assert result.returncode == 2
    assert existing.read_bytes() == b"mine"


def dead_letters(spool_path: Path, failed_at: list[datetime]) -> list[str]:
    """One dead letter per failure time; returns their ids."""
    ids = []
    for moment in failed_at:
        db = SpoolDatabase(spool_path)
        queue = DurableQueue(db, EXECUTION_LOG_QUEUE, clock=lambda moment=moment: moment)
        receipt = queue.append("company-1", b"{}")
        [record] = queue.fetch_oldest(1)
        queue.dead_letter(record, "value too long for type character varying(20)")
        ids.append(receipt.record_id)
        db.close()
    return ids


def test_dead_letters_list_retry_and_purge(relay: SpoolCommand, spool_path: Path) -> None:
    now = datetime.now(UTC)
    old, recent, other = dead_letters(spool_path, [now - timedelta(days=10), now, now])
    listing = relay(spool_path, "dead-letters", "list")
    assert listing.returncode == 0
    assert "3 dead letters" in listing.stdout
    assert old in listing.stdout and "too long" in listing.stdout

    assert relay(spool_path, "dead-letters", "retry", recent).stdout.startswith("1 dead")
    assert "pending: 1 rows" in relay(spool_path, "status").stdout

    purged = relay(spool_path, "dead-letters", "purge", "--older-than", "7d")
    assert purged.stdout.startswith("1 dead letters purged")
    remaining = relay(spool_path, "dead-letters", "list").stdout
    assert old not in remaining and other in remaining

    assert relay(spool_path, "dead-letters", "purge", "--all").stdout.startswith("1 dead")
    assert "0 dead letters" in relay(spool_path, "dead-letters", "list").stdout


@pytest.mark.parametrize(
    "args",
    [
        ["dead-letters", "retry"],
        ["dead-letters", "retry", "--all", "some-id"],
        ["dead-letters", "purge", "--older-than", "soon"],
        ["salvage"],
    ],
)
def test_bad_arguments_exit_2(relay: SpoolCommand, spool_path: Path, args: list[str]) -> None:
    build_spool(spool_path)
    result = relay(spool_path, *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
