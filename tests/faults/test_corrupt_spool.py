"""Scenario 5: a corrupt or truncated spool at start. The relay refuses to start with a clear
message and the documented way out (`relay spool check`, `relay spool salvage`); it never
silently starts empty over it. After a salvage it starts on the new spool and delivers what
was recovered."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from spool import ScheduledQueue, SpoolDatabase
from tests.faults.harness import (
    REPORT,
    Figures,
    Hook,
    add_company,
    event_data,
)
from tests.spool.test_salvage import damage_leaf_pages
from tests.support import http_calls
from tests.support.receivers import PostLog, running_receiver
from tests.support.relay_command import run_relay
from tests.support.relay_launcher import RelayProcess
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

EVENTS = 150
NEVER = 1_000_000  # attempts: more than any run makes


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inbox_count(path: Path) -> int:
    db = SpoolDatabase(path)
    try:
        return ScheduledQueue(db, "inbox").count()
    finally:
        db.close()


def spool_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_relay(env, "spool", *args, timeout=120)


@pytest.mark.parametrize("damage", ["leaf pages", "truncated"])
def test_a_damaged_spool_stops_the_relay_until_salvaged(
    damage: str, relays: Callable[..., RelayProcess], pg_engine: Engine, post_log: PostLog
) -> None:
    started = time.monotonic()
    with running_receiver(post_log) as (_receiver, url):
        # Deliveries keep failing (503), so they stay in the inbox, as after an outage; they
        # are tried every 2 s and never given up, however long the posting takes.
        company = add_company(
            pg_engine, "corrupt", [Hook("bad-down", f"{url}/bad-down/status/503")]
        )
        relay = relays("corrupt", retry_schedule_seconds="2", max_attempts=NEVER).start()
        for n in range(EVENTS):
            answer = http_calls.post(
                f"{relay.url}/v1/events",
                json={
                    "company_id": str(company.id),
                    "event": "call-history-was-created",
                    "id": f"corrupt-{n}",
                    "data": event_data(f"corrupt-{n}", n),
                },
                timeout=10,
            )
            assert answer.status_code == 202
        relay.stop_cleanly()  # checkpoints: everything is in the main file
        spool = relay.spool_path
        waiting = inbox_count(spool)
        assert waiting == EVENTS

        if damage == "leaf pages":
            damage_leaf_pages(spool, 2)
        else:
            data = spool.read_bytes()
            spool.write_bytes(data[: len(data) * 2 // 3])
        evidence = digest(spool)

        refused = run_relay(relay.env, "serve", "--port", str(relay.port))
        assert refused.returncode == 2
        assert "relay spool salvage" in refused.stderr and "will not start" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert digest(spool) == evidence  # never overwritten, never started empty

        checked = spool_cli(relay.env, "check")
        assert checked.returncode == 2 and "is damaged" in checked.stderr

        rescued = spool.with_name("salvaged.db")
        salvaged = spool_cli(relay.env, "salvage", str(rescued))
        assert salvaged.returncode == 0, salvaged.stderr
        assert digest(spool) == evidence
        recovered = inbox_count(rescued)
        assert 0 < recovered <= EVENTS

        # The relay starts on the salvaged spool and resumes what was recovered.
        restarted = relays("corrupt-salvaged", retry_schedule_seconds="2", max_attempts=NEVER)
        restarted.use_spool(rescued)
        before = len(post_log.posts("bad-down"))
        restarted.start()

        def resumed() -> int:
            return len({p.webhook_id for p in post_log.posts("bad-down")[before:]})

        assert eventually(lambda: resumed() == recovered, 30), restarted.log_since_start()[-3000:]
        restarted.stop_cleanly()
    REPORT.append(
        Figures(
            f"5 corrupt spool ({damage})",
            accepted=EVENTS,
            seconds=time.monotonic() - started,
            extra={
                "refused_start": "yes",
                "salvaged": recovered,
                "unrecoverable": EVENTS - recovered,
            },
        )
    )
