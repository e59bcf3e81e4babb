"""Scenario 4: the spool's disk fills up. Intake answers 503 (with Retry-After), the relay
stays up, the spool is not corrupted, and it recovers when space returns; every event
accepted before, during and after is delivered and logged exactly once."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from spool import check_file
from tests.faults.harness import (
    Accepted,
    Hook,
    add_company,
    check,
    event_data,
    execution_rows,
    spool_state,
    wait_delivered,
)
from tests.support import http_calls
from tests.support.receivers import PostLog, running_receiver
from tests.support.relay_launcher import RelayProcess

pytestmark = pytest.mark.faults

DISK_BYTES = 8 * 1024 * 1024
ROOM_BYTES = 256 * 1024
MAX_EVENTS = 20_000  # bound: the disk fills long before


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A dedicated 8 MiB file system (tmpfs), so filling it harms nothing else."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs as root)")
    mount_point = Path(tempfile.mkdtemp(prefix="relay-small-disk-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs", str(mount_point)],
        check=True,
        timeout=30,
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False, timeout=30)
        mount_point.rmdir()


def post(relay: RelayProcess, company: str, fault_id: str, n: int) -> httpx.Response:
    return http_calls.post(
        f"{relay.url}/v1/events",
        json={
            "company_id": company,
            "event": "call-history-was-created",
            "id": fault_id,
            "data": event_data(fault_id, n),
        },
        timeout=10,
    )


def test_a_full_disk_turns_intake_away_and_recovers_when_space_returns(
    small_disk: Path, relays: Callable[..., RelayProcess], pg_engine: Engine, post_log: PostLog
) -> None:
    started = time.monotonic()
    with running_receiver(post_log) as (_receiver, url):
        company = add_company(pg_engine, "disk", [Hook("ok", f"{url}/ok/ok")])
        relay = relays("disk", spool_max_bytes=1024**3)
        relay.use_spool(small_disk / "spool.db")
        relay.start()
        # Leave a little room: a few events fit, then the WAL cannot grow and the disk is full.
        filler = small_disk / "filler"
        filler.write_bytes(b"\0" * (DISK_BYTES - ROOM_BYTES - relay.spool_path.stat().st_size))

        accepted: dict[str, Accepted] = {}
        statuses: list[int] = []
        refused_at = None
        for n in range(MAX_EVENTS):
            fault_id = f"disk-{n}"
            answer = post(relay, str(company.id), fault_id, n)
            statuses.append(answer.status_code)
            if answer.status_code == 202:
                accepted[fault_id] = Accepted(fault_id, company.id, ("ok",), time.monotonic())
            else:
                assert answer.status_code == 503, answer.text
                assert answer.headers.get("retry-after")
                refused_at = n
                break
        assert refused_at is not None, "the disk never filled"
        for n in range(refused_at + 1, refused_at + 20):  # stays refused, stays up
            answer = post(relay, str(company.id), f"disk-{n}", n)
            assert answer.status_code in (202, 503)
            if answer.status_code == 202:
                accepted[f"disk-{n}"] = Accepted(f"disk-{n}", company.id, ("ok",), 0.0)
        assert relay.alive

        filler.unlink()  # space returns
        for n in range(refused_at + 20, refused_at + 120):
            fault_id = f"disk-{n}"
            answer = post(relay, str(company.id), fault_id, n)
            assert answer.status_code == 202, answer.text
            accepted[fault_id] = Accepted(fault_id, company.id, ("ok",), time.monotonic())

        assert wait_delivered(post_log, accepted.values(), timeout=60)
        relay.stop_cleanly()
        assert check_file(relay.spool_path).ok  # not corrupted by the full disk
        check(
            "4 disk full",
            accepted=accepted.values(),
            posts=post_log.posts(),
            rows=execution_rows(pg_engine),
            spools=[spool_state(relay.spool_path)],
            exact=True,
            started=started,
            extra={"accepted_before_full": refused_at, "refused_503": statuses.count(503)},
        )
