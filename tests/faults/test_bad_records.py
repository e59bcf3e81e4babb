"""Scenario 6: bad records on the way to PostgreSQL (NUL bytes, lone surrogates, a 5 MB
payload, a 40-digit phone number, a company id that is not a uuid, an integer only the server
finds out of range, a body that is not JSON) sit in the spool among good ones while live
traffic flows. The bad ones become dead letters with their reasons; all others arrive once."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.runtime.wiring import EXECUTION_LOG_QUEUE
from spool import DurableQueue, SpoolDatabase
from tests.faults.harness import (
    EVENT,
    Accepted,
    Hook,
    LoadGenerator,
    add_company,
    check,
    execution_rows,
    spool_state,
    wait_delivered,
)
from tests.support import http_calls
from tests.support.receivers import PostLog, running_receiver
from tests.support.relay_data import make_result
from tests.support.relay_launcher import RelayProcess

pytestmark = pytest.mark.faults

GOOD_RECORDS = 200
FIVE_MB = 5 * 1024 * 1024


def fields_of(company: uuid.UUID, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = json.loads(make_result(company).spool_payload())
    fields.update(changes)
    return fields


# name -> (spool key, payload fields, a word the dead letter's reason must contain)
def bad_records(company: uuid.UUID) -> dict[str, tuple[str, dict[str, Any], str]]:
    key = str(company)
    return {
        "nul": (key, fields_of(company, error="boom\x00"), "NUL"),
        "surrogate": (key, fields_of(company, request_payload='{"s": "\ud800"}'), "surrogate"),
        "phone 40 digits": (key, fields_of(company, phone_number="1" * 40), "phone_number"),
        "company not a uuid": ("not-a-uuid", fields_of(company), "UUID"),
        "attempt out of range": (key, fields_of(company, attempt=2**40), "range"),
        "payload not json": (key, fields_of(company, request_payload="{not json"), "json"),
    }


def seed_spool(path: Any, companies: list[uuid.UUID]) -> tuple[list[str], dict[str, str], str]:
    """Good and bad records in the outbox of a relay that has not started yet."""
    db = SpoolDatabase(path)
    try:
        outbox = DurableQueue(db, EXECUTION_LOG_QUEUE)
        good = []
        for n in range(GOOD_RECORDS):
            company = companies[n % len(companies)]
            good.append(
                outbox.append(str(company), json.dumps(fields_of(company)).encode()).record_id
            )
        huge_payload = json.dumps({"blob": "x" * FIVE_MB})
        big = fields_of(companies[0], request_payload=huge_payload)
        huge = outbox.append(str(companies[0]), json.dumps(big).encode()).record_id
        good.append(huge)
        bad: dict[str, str] = {}
        for name, (key, fields, reason) in bad_records(companies[0]).items():
            payload = json.dumps(fields).encode("utf-8", "surrogatepass")
            bad[outbox.append(key, payload).record_id] = f"{name}: {reason}"
            good.append(
                outbox.append(
                    key if key != "not-a-uuid" else str(companies[1]),
                    json.dumps(fields_of(companies[1])).encode(),
                ).record_id
            )
        return good, bad, huge
    finally:
        db.close()


def test_bad_records_become_dead_letters_and_the_rest_arrive(
    relays: Callable[..., RelayProcess], pg_engine: Engine, post_log: PostLog
) -> None:
    started = time.monotonic()
    with running_receiver(post_log) as (_, url):
        companies = [
            add_company(pg_engine, f"bad records {n}", [Hook("all", f"{url}/all/ok")])
            for n in range(2)
        ]
        relay = relays("relay", max_body_bytes=FIVE_MB + 65536)
        good, bad, huge = seed_spool(relay.spool_path, [c.id for c in companies])
        relay.start()
        load = LoadGenerator(
            [lambda: relay.url], companies, rate=50, max_events=200, prefix="live"
        ).start()
        # One 5 MB event through the intake: delivered whole, logged as a small stand-in.
        big_id = "live-big"
        data = {"fault_id": big_id, "blob": "y" * FIVE_MB}
        body = json.dumps(
            {"company_id": str(companies[0].id), "event": EVENT, "id": big_id, "data": data}
        )
        answer = http_calls.post(
            f"{relay.url}/v1/events",
            content=body,
            headers={"content-type": "application/json"},
            timeout=60,
        )
        assert answer.status_code == 202, answer.text
        assert load.wait_done(30)
        accepted = [
            *load.accepted.values(),
            Accepted(big_id, companies[0].id, ("all",), time.monotonic()),
        ]
        assert not load.unexpected, load.unexpected
        assert wait_delivered(post_log, accepted, timeout=60)
        relay.stop_cleanly()
    state = spool_state(relay.spool_path)
    rows = execution_rows(pg_engine)
    seeded = set(good) | set(bad)
    logged = [r.execution_id for r in rows]
    # Every good seeded record arrived exactly once, the 5 MB one included; no bad one did.
    assert sorted(r for r in logged if r in seeded) == sorted(good)
    with pg_engine.connect() as conn:
        size = conn.execute(
            sa.text(
                "SELECT octet_length(request_payload::text) FROM webhook_executions"
                " WHERE execution_id = :id"
            ),
            {"id": huge},
        ).scalar_one()
        stand_in = conn.execute(
            sa.text("SELECT request_payload FROM webhook_executions WHERE message_id = :m"),
            {"m": next(p.webhook_id for p in post_log.posts() if p.fault_id == big_id)},
        ).scalar_one()
    assert size > FIVE_MB
    assert stand_in["truncated"] is True and stand_in["size_bytes"] > FIVE_MB
    # The bad ones are dead letters, each with its reason.
    letters = {letter.id: letter.error for letter in state.dead_letters}
    assert set(letters) == set(bad), letters
    for record_id, expected in bad.items():
        word = expected.split(": ")[1]
        assert word.lower() in letters[record_id].lower(), (expected, letters[record_id])
    check(
        "6 bad records to PostgreSQL",
        accepted=accepted,
        posts=post_log.posts(),
        rows=[r for r in rows if r.execution_id not in seeded],
        spools=[state],
        exact=True,
        expected_dead_letters=len(bad),
        started=started,
        extra={"seeded_good": len(good), "seeded_bad": len(bad)},
    )
