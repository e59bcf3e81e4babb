"""Scenario 7: at least 10,000 generated bad requests at the intake (wrong types, huge and
deeply nested JSON, invalid UTF-8, NaN, NUL, lone surrogates, truncated JSON, wrong content
types, missing or wrong auth). Only 4xx answers, never a 5xx; the relay stays up; the events
accepted between them (good ones, and generated ones that happen to be valid) are delivered."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.faults.harness import (
    EVENT,
    Accepted,
    Hook,
    add_company,
    check,
    execution_rows,
    spool_state,
    wait_delivered,
)
from tests.support.receivers import PostLog, running_receiver
from tests.support.relay_launcher import RelayProcess

pytestmark = pytest.mark.faults

BODIES = int(os.environ.get("FAULTS_BAD_BODIES", "10000"))
PER_EXAMPLE = 25
TOKEN = "fault-token"
MAX_BODY = 64 * 1024

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
wrong_type = json_value.filter(lambda v: not isinstance(v, str))


@dataclass(frozen=True)
class Case:
    kind: str
    auth: str  # "ok", "missing", "wrong"
    content_type: str | None
    body: bytes
    fault_id: str | None = None  # set when the body may be a valid event
    data: dict[str, Any] | None = None  # what it carries, when the test could parse it


def event_doc(company: str, data: object, **extra: object) -> dict[str, Any]:
    return {"company_id": company, "event": EVENT, "data": data, **extra}


def raw_event(company: str, data_text: str, extra: str = "") -> str:
    """An event body written by hand: for JSON that `json.dumps` would never produce."""
    return (
        '{"company_id": "'
        + company
        + '", "event": "'
        + EVENT
        + '", "data": '
        + data_text
        + extra
        + "}"
    )


@st.composite
def cases(draw: st.DrawFn, company: str) -> Case:
    kind = draw(
        st.sampled_from(
            [
                "valid-ish",
                "wrong-type",
                "missing-field",
                "unknown-company",
                "unknown-event",
                "top-level",
                "huge",
                "deep",
                "invalid-utf8",
                "non-finite",
                "nul-or-surrogate",
                "truncated",
                "bad-id",
            ]
        )
    )
    data: dict[str, Any] | None = None
    fault_id: str | None = None
    if kind == "valid-ish":
        data = draw(st.dictionaries(st.text(max_size=10), json_value, max_size=5))
        data["fault_id"] = fault_id = f"fuzz-{uuid.uuid4().hex}"
        body = json.dumps(
            event_doc(company, data, id=data["fault_id"]), ensure_ascii=draw(st.booleans())
        )
    elif kind == "wrong-type":
        field = draw(st.sampled_from(["company_id", "event", "data", "id"]))
        doc = event_doc(company, {"fault_id": "never"})
        doc[field] = draw(wrong_type.filter(lambda v: v is not None or field != "id"))
        if field == "data" and isinstance(doc["data"], dict):
            doc["data"] = [doc["data"]]
        body = json.dumps(doc)
    elif kind == "missing-field":
        doc = event_doc(company, {"fault_id": "never"})
        del doc[draw(st.sampled_from(["company_id", "event", "data"]))]
        body = json.dumps(doc)
    elif kind == "unknown-company":
        body = json.dumps(event_doc(str(uuid.uuid4()), {"fault_id": "never"}))
    elif kind == "unknown-event":
        doc = event_doc(company, {"fault_id": "never"})
        doc["event"] = draw(st.text(min_size=1, max_size=120).filter(lambda s: s != EVENT))
        body = json.dumps(doc)
    elif kind == "top-level":
        body = json.dumps(draw(json_value.filter(lambda v: not isinstance(v, dict))))
    elif kind == "huge":
        size = draw(st.integers(MAX_BODY + 1, 4 * MAX_BODY))
        body = json.dumps(event_doc(company, {"blob": "x" * size}))
    elif kind == "deep":
        # Shallow enough and it is a valid event (tracked like one); deeper, a 400 or a 413.
        depth = draw(st.integers(1, 200_000) | st.integers(400, 1200))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        fault_id = f"deep-{uuid.uuid4().hex}"
        data_text = (
            '{"fault_id": "' + fault_id + '", "x": ' + opener * depth + "1" + closer * depth + "}"
        )
        body = raw_event(company, data_text, ', "id": "' + fault_id + '"')
        try:  # near Python's recursion limit: the relay may parse what the test cannot
            data = json.loads(data_text)
        except RecursionError:
            data = None
    elif kind == "invalid-utf8":
        good = json.dumps(event_doc(company, {"fault_id": "never", "s": "é"})).encode()
        at = draw(st.integers(0, len(good)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88"]))
        return Case(kind, "ok", "application/json", good[:at] + junk + good[at:])
    elif kind == "non-finite":
        value = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999"]))
        body = raw_event(company, '{"v": ' + value + "}")
    elif kind == "nul-or-surrogate":
        escape = draw(st.sampled_from(["\\u0000", "\\ud800", "\\udfff", "a\\u0000b", "\\ud83d"]))
        where = draw(st.sampled_from(["value", "key", "id"]))
        if where == "value":
            body = raw_event(company, '{"s": "' + escape + '"}')
        elif where == "key":
            body = raw_event(company, '{"' + escape + '": 1}')
        else:
            body = raw_event(company, "{}", ', "id": "' + escape + '"')
    elif kind == "truncated":
        whole = json.dumps(event_doc(company, {"fault_id": "never", "n": [1, 2, {"a": "b"}]}))
        body = whole[: draw(st.integers(0, len(whole) - 1))]
    else:  # bad-id
        doc = event_doc(company, {"fault_id": "never"})
        doc["id"] = draw(st.sampled_from(["", "   ", "x" * 201]))
        body = json.dumps(doc)
    auth = draw(st.sampled_from(["ok"] * 6 + ["missing", "wrong"]))
    content_type = draw(
        st.sampled_from(
            ["application/json"] * 6
            + [
                "application/cloudevents+json",
                "application/json; charset=utf-8",
                "text/plain",
                "application/x-www-form-urlencoded",
                "",
                None,
            ]
        )
    )
    return Case(kind, auth, content_type, body.encode("utf-8", "surrogatepass"), fault_id, data)


def send(client: httpx.Client, url: str, case: Case) -> httpx.Response:
    headers: dict[str, str] = {}
    if case.auth == "ok":
        headers["authorization"] = f"Bearer {TOKEN}"
    elif case.auth == "wrong":
        headers["authorization"] = "Bearer not-the-token"
    if case.content_type is not None:
        headers["content-type"] = case.content_type
    return client.post(f"{url}/v1/events", content=case.body, headers=headers)


def test_bad_input_gets_4xx_never_5xx_and_good_events_still_arrive(
    relays: Callable[..., RelayProcess], pg_engine: Engine, post_log: PostLog
) -> None:
    started = time.monotonic()
    statuses: Counter[tuple[str, int]] = Counter()
    accepted: list[Accepted] = []
    sent_data: dict[str, dict[str, Any]] = {}
    with running_receiver(post_log) as (_, url), httpx.Client(timeout=30) as client:
        company = add_company(pg_engine, "fuzz", [Hook("all", f"{url}/all/ok")])
        relay = relays("relay", intake_token=TOKEN, max_body_bytes=MAX_BODY).start()
        good = 0

        @settings(
            max_examples=BODIES // PER_EXAMPLE,
            deadline=None,
            database=None,
            phases=[Phase.generate],  # no shrinking: each example costs real requests
            suppress_health_check=list(HealthCheck),
        )
        @given(st.lists(cases(str(company.id)), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
        def bad_requests(batch: list[Case]) -> None:
            nonlocal good
            for case in batch:
                answer = send(client, relay.url, case)
                statuses[(case.kind, answer.status_code)] += 1
                assert answer.status_code < 500, (case, answer.text)
                if answer.status_code == 202:
                    assert case.fault_id is not None, (case, answer.text)
                    fault_id = case.fault_id
                    if case.data is not None:
                        sent_data[fault_id] = case.data
                    accepted.append(Accepted(fault_id, company.id, ("all",), time.monotonic()))
                else:
                    assert 400 <= answer.status_code < 500, (case, answer.text)
                    if case.auth != "ok":
                        assert answer.status_code == 401, (case, answer.text)
            # A well-formed event between the bad ones is accepted.
            fault_id = f"good-{good}"
            good += 1
            good_case = Case(
                "good",
                "ok",
                "application/json",
                json.dumps(
                    event_doc(str(company.id), {"fault_id": fault_id}, id=fault_id)
                ).encode(),
            )
            answer = send(client, relay.url, good_case)
            assert answer.status_code == 202, answer.text
            accepted.append(Accepted(fault_id, company.id, ("all",), time.monotonic()))
            assert relay.alive

        bad_requests()
        assert relay.alive
        assert wait_delivered(post_log, accepted, timeout=60)
        relay.stop_cleanly()
    # What was delivered is what was sent: the same JSON value (a float may be written in
    # another of its shortest forms, 1e-07 or 1e-7).
    for post in post_log.posts():
        if post.fault_id in sent_data:
            try:
                delivered = json.loads(post.body)["data"]
            except RecursionError:  # as deep as Python goes: the id matched, that will do
                continue
            assert delivered == sent_data[post.fault_id], post.body[:500]
    total = sum(statuses.values())
    assert total >= BODIES
    by_status = Counter(status for _, status in statuses.elements())
    print("bad intake answers by (kind, status):", dict(sorted(statuses.items())))
    assert "Traceback" not in relay.log_text(), relay.log_text()[-3000:]
    check(
        "7 bad input at intake",
        accepted=accepted,
        posts=post_log.posts(),
        rows=execution_rows(pg_engine),
        spools=[spool_state(relay.spool_path)],
        exact=True,
        started=started,
        extra={"requests": total, "answers": dict(sorted(by_status.items()))},
    )
