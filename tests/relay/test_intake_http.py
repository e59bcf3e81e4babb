"""`POST /v1/events` over real HTTP: a real relay (uvicorn, lifespan) on 127.0.0.1, real
PostgreSQL behind its registry, a real recording receiver, and every answer a client can get."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.schema import companies
from relay.inbox.deliveries import Delivery
from relay.inbox.store import EventInbox, IntakeReceipt
from relay.runtime.service import RelayService
from relay.settings import RelaySettings
from spool import SpoolDatabase
from tests.relay.conftest import EVENT, add_company, add_webhook
from tests.support import http_calls
from tests.support.pg_cluster import PgCluster
from tests.support.receivers import RunningReceiver
from tests.support.relay_data import sample_event
from tests.support.relay_launcher import InProcessRelay
from tests.support.waiting import eventually

StartRelay = Callable[..., InProcessRelay]
FAILS_ON_SAMPLE = [{"field_path": "callHistory.campaign.id", "operator": "equals", "value": 1}]
PASSES_ON_SAMPLE = [
    {"field_path": "callHistory.campaign.id", "operator": "equals", "value": 201074}
]


def post_raw(
    relay: InProcessRelay,
    content: bytes | Iterator[bytes],
    *,
    content_type: str | None = "application/json",
    path: str = "/v1/events",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = dict(headers or {})
    if content_type is not None:
        sent["content-type"] = content_type
    return http_calls.post(f"{relay.url}{path}", content=content, headers=sent, timeout=10)


def event_body(company: uuid.UUID, **fields: Any) -> bytes:
    document: dict[str, Any] = {"company_id": str(company), "event": EVENT, "data": sample_event()}
    document.update(fields)
    return json.dumps(document).encode()


def settled(relay: InProcessRelay) -> bool:
    """No delivery waits in the inbox or is in flight."""
    return relay.service.inbox.queue.count() == 0 and relay.worker.dispatcher.in_flight == 0


def assert_json_error(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert isinstance(answer["error"], str) and answer["error"]
    if field is not None:
        assert answer["field"] == field
        assert answer["error"].startswith(f"{field}: ")


@pytest.fixture
def company(pg_engine: Engine) -> uuid.UUID:
    return add_company(pg_engine)


@pytest.fixture(scope="module")
def unserved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayService]:
    """A relay's ASGI app, neither served nor started (no lifespan: no registry loaded,
    nothing running): enough for every answer intake gives before it looks a company up."""
    directory = tmp_path_factory.mktemp("unserved")
    service = RelayService(
        RelaySettings(
            database_url=f"sqlite:///{directory / 'relay.db'}",
            spool_path=directory / "spool" / "spool.db",
        )
    )
    yield service
    service.spool.close()
    service.engine.dispose()


def post_to_app(service: RelayService, content: bytes) -> httpx.Response:
    """POST /v1/events to the service's ASGI app in this process, without a server."""

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            return await client.post(
                "/v1/events", content=content, headers={"content-type": "application/json"}
            )

    return asyncio.run(post())


# -- 202 ----------------------------------------------------------------------------------------


def test_202_counts_only_the_webhooks_whose_filters_pass(
    start_relay: StartRelay, pg_engine: Engine, receiver: RunningReceiver, company: uuid.UUID
) -> None:
    add_webhook(pg_engine, company, f"{receiver.url}/ok/matching", filters=PASSES_ON_SAMPLE)
    add_webhook(pg_engine, company, f"{receiver.url}/ok/filtered", filters=FAILS_ON_SAMPLE)
    relay = start_relay()

    response = relay.post(company)

    assert response.status_code == 202, response.text
    answer = response.json()
    assert set(answer) == {"id", "deliveries"}
    assert answer["deliveries"] == 1
    uuid.UUID(answer["id"])  # a fresh id when the caller gave none
    assert eventually(lambda: len(receiver.receiver.on("/ok/matching")) == 1)
    assert eventually(lambda: settled(relay))
    assert receiver.receiver.on("/ok/filtered") == []
    delivered = receiver.receiver.on("/ok/matching")[0].json()
    assert delivered["event_type"] == EVENT
    assert delivered["company_id"] == str(company)
    assert delivered["data"] == sample_event()


def test_every_matching_webhook_is_a_delivery(
    start_relay: StartRelay, pg_engine: Engine, receiver: RunningReceiver, company: uuid.UUID
) -> None:
    for name in ("a", "b", "c"):
        add_webhook(pg_engine, company, f"{receiver.url}/ok/{name}")
    relay = start_relay()

    response = relay.post(company)

    assert response.status_code == 202
    assert response.json()["deliveries"] == 3
    assert eventually(lambda: len(receiver.receiver.on("/ok/")) == 3)


def test_an_event_without_matching_webhooks_is_accepted_with_zero_deliveries(
    start_relay: StartRelay, pg_engine: Engine, receiver: RunningReceiver, company: uuid.UUID
) -> None:
    add_webhook(pg_engine, company, f"{receiver.url}/ok", filters=FAILS_ON_SAMPLE)
    bare = add_company(pg_engine, "No Webhooks Ltda")
    relay = start_relay()

    filtered = relay.post(company)
    nobody = relay.post(bare)

    for response in (filtered, nobody):
        assert response.status_code == 202, response.text
        assert response.json()["deliveries"] == 0
    assert settled(relay)
    assert receiver.receiver.requests == []


def test_the_callers_id_is_echoed(
    start_relay: StartRelay, pg_engine: Engine, receiver: RunningReceiver, company: uuid.UUID
) -> None:
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay = start_relay()

    response = relay.post(company, event_id="crm-call-778812")

    assert response.status_code == 202
    assert response.json() == {"id": "crm-call-778812", "deliveries": 1}


def test_content_type_with_parameters_or_a_json_suffix_is_accepted(
    start_relay: StartRelay, pg_engine: Engine, company: uuid.UUID
) -> None:
    relay = start_relay()
    for content_type in (
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/cloudevents+json",
    ):
        response = post_raw(relay, event_body(company), content_type=content_type)
        assert response.status_code == 202, (content_type, response.text)


# -- idempotent intake --------------------------------------------------------------------------


def test_a_repeated_id_for_the_same_company_is_accepted_once(
    start_relay: StartRelay, pg_engine: Engine, receiver: RunningReceiver, company: uuid.UUID
) -> None:
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay = start_relay()

    first = relay.post(company, event_id="evt-1")
    again = relay.post(company, event_id="evt-1")
    changed_body = relay.post(company, {"number": "1"}, event_id="evt-1")

    assert first.status_code == again.status_code == changed_body.status_code == 202
    assert first.json() == again.json() == changed_body.json() == {"id": "evt-1", "deliveries": 1}
    assert eventually(lambda: len(receiver.receiver.requests) >= 1)
    assert eventually(lambda: settled(relay))
    assert len(receiver.receiver.requests) == 1
    assert receiver.receiver.requests[0].json()["data"] == sample_event()


def test_the_same_id_for_another_company_is_a_separate_event(
    start_relay: StartRelay, pg_engine: Engine, receiver: RunningReceiver, company: uuid.UUID
) -> None:
    other = add_company(pg_engine, "Outra Empresa")
    add_webhook(pg_engine, company, f"{receiver.url}/ok/first")
    add_webhook(pg_engine, other, f"{receiver.url}/ok/other")
    relay = start_relay()

    mine = relay.post(company, event_id="shared-id")
    theirs = relay.post(other, event_id="shared-id")

    assert mine.json() == theirs.json() == {"id": "shared-id", "deliveries": 1}
    assert eventually(lambda: len(receiver.receiver.requests) == 2)
    assert [r.json()["company_id"] for r in receiver.receiver.on("/ok/first")] == [str(company)]
    assert [r.json()["company_id"] for r in receiver.receiver.on("/ok/other")] == [str(other)]


def test_events_without_an_id_are_never_deduplicated(
    start_relay: StartRelay, pg_engine: Engine, receiver: RunningReceiver, company: uuid.UUID
) -> None:
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay = start_relay()

    ids = {relay.post(company).json()["id"] for _ in range(3)}

    assert len(ids) == 3
    assert eventually(lambda: len(receiver.receiver.requests) == 3)


def test_concurrent_repeats_of_one_id_are_accepted_once(
    start_relay: StartRelay, pg_engine: Engine, receiver: RunningReceiver, company: uuid.UUID
) -> None:
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay = start_relay()
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def post() -> None:
        response = relay.post(company, event_id="evt-race")
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [a.status_code for a in answers] == [202] * 8
    assert {a.text for a in answers} == {answers[0].text}
    assert eventually(lambda: len(receiver.receiver.requests) >= 1)
    assert eventually(lambda: settled(relay))
    assert len(receiver.receiver.requests) == 1


def test_a_caller_id_is_remembered_for_the_idempotency_window_only(tmp_path: Path) -> None:
    """The inbox on a real spool, with the clock injected: 24 h, then the id is new again."""
    now = [datetime(2026, 11, 24, 12, 0, tzinfo=UTC)]
    spool = SpoolDatabase(tmp_path / "spool.db")
    try:
        inbox = EventInbox(spool, idempotency_window=timedelta(hours=24), clock=lambda: now[0])
        company = uuid.uuid4()

        def accept(event_id: str) -> IntakeReceipt:
            delivery = Delivery(
                id=f"msg_{uuid.uuid4().hex}",
                event_id=event_id,
                company_id=company,
                webhook_id=uuid.uuid4(),
                url="http://127.0.0.1:9/hook",
                event_type=EVENT,
                event_db_id=1,
                phone_number=None,
                body="{}",
            )
            return inbox.accept(company, event_id, [delivery], caller_id="crm-1")

        first = accept("crm-1")
        now[0] += timedelta(hours=23, minutes=59)
        repeat = accept("ignored")
        now[0] = datetime(2026, 11, 25, 12, 0, 1, tzinfo=UTC)
        later = accept("crm-1")

        assert (first.id, first.deliveries, first.duplicate) == ("crm-1", 1, False)
        assert (repeat.id, repeat.deliveries, repeat.duplicate) == ("crm-1", 1, True)
        assert later.duplicate is False
        assert inbox.queue.count() == 2
    finally:
        spool.close()


# -- auth ---------------------------------------------------------------------------------------


def test_without_a_bearer_token_the_answer_is_401_with_www_authenticate(
    start_relay: StartRelay, company: uuid.UUID
) -> None:
    relay = start_relay(intake_token="s3cret")

    authorizations: list[str | None] = [None, "", "Bearer", "Basic czNjcmV0", "s3cret", "Token x"]
    for authorization in authorizations:
        headers: dict[str, str] = {} if authorization is None else {"authorization": authorization}
        response = post_raw(relay, event_body(company), headers=headers)
        assert_json_error(response, 401, "authorization")
        assert response.headers["www-authenticate"].lower().startswith("bearer")
        assert "missing" in response.json()["error"], authorization


def test_a_wrong_token_is_401(start_relay: StartRelay, company: uuid.UUID) -> None:
    relay = start_relay(intake_token="s3cret")

    for token in ("wrong", "s3cre", "s3cret2", "S3CRET", "s3cret s3cret"):
        response = relay.post(company, token=token)
        assert_json_error(response, 401, "authorization")
        assert response.headers["www-authenticate"].lower().startswith("bearer")
        assert "invalid" in response.json()["error"], token
        assert "s3cret" not in response.text


def test_auth_is_checked_before_the_body_is_read(
    start_relay: StartRelay, company: uuid.UUID
) -> None:
    relay = start_relay(intake_token="s3cret", max_body_bytes=2000)

    for content, content_type in ((b"{not json", "application/json"), (b"x", "text/plain")):
        response = post_raw(relay, content, content_type=content_type)
        assert_json_error(response, 401, "authorization")
    response = post_raw(relay, b"x" * 5000)
    assert_json_error(response, 401, "authorization")


def test_the_right_token_is_accepted(
    start_relay: StartRelay, pg_engine: Engine, receiver: RunningReceiver, company: uuid.UUID
) -> None:
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay = start_relay(intake_token="s3cret")

    response = relay.post(company, token="s3cret")
    lowercase_scheme = post_raw(
        relay, event_body(company), headers={"authorization": "bearer s3cret"}
    )

    assert response.status_code == 202, response.text
    assert lowercase_scheme.status_code == 202, lowercase_scheme.text
    assert eventually(lambda: len(receiver.receiver.requests) == 2)


def test_without_a_token_configured_no_header_is_needed(
    start_relay: StartRelay, company: uuid.UUID
) -> None:
    relay = start_relay()

    assert relay.post(company).status_code == 202
    assert relay.post(company, token="anything").status_code == 202


# -- every 4xx ----------------------------------------------------------------------------------


def test_a_body_the_parser_refuses_is_a_json_4xx_over_http(
    start_relay: StartRelay, company: uuid.UUID
) -> None:
    """End to end once per kind of answer; every body the parser refuses is checked on the
    app below (and each refusal by the parser's own tests, tests/relay/test_event_input.py)."""
    relay = start_relay()
    missing = json.loads(event_body(company))
    del missing["data"]

    assert_json_error(post_raw(relay, b"{not json"), 400, "body")
    assert_json_error(post_raw(relay, json.dumps(missing).encode()), 422, "data")


def without(field: str) -> bytes:
    """A valid event body for any company, without `field`."""
    document = json.loads(event_body(ANY_COMPANY))
    del document[field]
    return json.dumps(document).encode()


ANY_COMPANY = uuid.UUID("6f1c2b1e-8a0b-4b0e-9a0e-3d1b2c4f5a60")
NOT_EVENTS: dict[str, tuple[bytes, int]] = {
    "malformed": (b"{not json", 400),
    "empty": (b"", 400),
    "not-utf8": (b"\xff\xfe", 400),
    "deep": (b"[" * 100_000, 400),
    "nul": (b'{"data": {"x": "\\u0000"}}', 400),
    "surrogate": (b'{"data": {"x": "\\ud800"}}', 400),
    "array": (b"[1, 2]", 422),
    "string": (b'"event"', 422),
    "non-finite": (
        f'{{"company_id": "{ANY_COMPANY}", "event": "{EVENT}", "data": {{"x": NaN}}}}'.encode(),
        400,
    ),
}
MISTYPED: list[tuple[str, object]] = [
    ("company_id", "not-a-uuid"),
    ("company_id", 42),
    ("event", 7),
    ("event", ""),
    ("event", "e" * 101),
    ("data", [1]),
    ("data", None),
    ("id", ""),
    ("id", 5),
    ("id", "x" * 201),
]
REFUSED_BODIES = [
    *[
        pytest.param(body, status, "body", "", id=name)
        for name, (body, status) in NOT_EVENTS.items()
    ],
    *[
        pytest.param(without(field), 422, field, "required", id=f"missing-{field}")
        for field in ("company_id", "event", "data")
    ],
    *[
        pytest.param(event_body(ANY_COMPANY, **{field: value}), 422, field, "", id=f"{field}-{n}")
        for n, (field, value) in enumerate(MISTYPED)
    ],
]


@pytest.mark.parametrize(("content", "status", "field", "says"), REFUSED_BODIES)
def test_every_body_the_parser_refuses_is_a_json_4xx_naming_the_field(
    unserved: RelayService, content: bytes, status: int, field: str, says: str
) -> None:
    response = post_to_app(unserved, content)

    assert_json_error(response, status, field)
    assert says in response.json()["error"]


def test_a_body_that_is_not_declared_json_is_415(
    start_relay: StartRelay, company: uuid.UUID
) -> None:
    relay = start_relay()

    for content_type in ("text/plain", "application/x-www-form-urlencoded", "json", None):
        response = post_raw(relay, event_body(company), content_type=content_type)
        assert_json_error(response, 415, "content-type")


def test_a_body_over_the_limit_with_content_length_is_413(
    start_relay: StartRelay, company: uuid.UUID
) -> None:
    relay = start_relay(max_body_bytes=2000)
    big = event_body(company, data={"blob": "x" * 3000})

    response = post_raw(relay, big)

    assert "content-length" in response.request.headers
    assert_json_error(response, 413, "body")
    assert "2000" in response.json()["error"]


def test_a_chunked_body_over_the_limit_without_content_length_is_413(
    start_relay: StartRelay, company: uuid.UUID
) -> None:
    relay = start_relay(max_body_bytes=2000)
    big = event_body(company, data={"blob": "x" * 3000})

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 500):
            yield big[start : start + 500]

    response = post_raw(relay, chunks())

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_json_error(response, 413, "body")


def test_a_chunked_body_under_the_limit_is_accepted(
    start_relay: StartRelay, company: uuid.UUID
) -> None:
    relay = start_relay(max_body_bytes=2000)
    small = event_body(company, data={"n": 1})

    response = post_raw(relay, iter([small[:10], small[10:]]))

    assert response.status_code == 202, response.text


def test_a_body_exactly_at_the_limit_is_accepted(
    start_relay: StartRelay, company: uuid.UUID
) -> None:
    base = event_body(company, data={"pad": ""})
    limit = 2000
    exact = event_body(company, data={"pad": "p" * (limit - len(base))})
    assert len(exact) == limit
    relay = start_relay(max_body_bytes=limit)

    assert post_raw(relay, exact).status_code == 202
    assert post_raw(relay, exact + b" ").status_code == 413


def test_an_unknown_company_is_404(start_relay: StartRelay, pg_engine: Engine) -> None:
    relay = start_relay()

    response = relay.post(uuid.uuid4())

    assert_json_error(response, 404, "company_id")


def test_an_inactive_company_is_404(
    start_relay: StartRelay, pg_engine: Engine, receiver: RunningReceiver, company: uuid.UUID
) -> None:
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    with pg_engine.begin() as conn:
        conn.execute(
            sa.update(companies).where(companies.c.id == company).values(status="inactive")
        )
    relay = start_relay()

    response = relay.post(company)

    assert_json_error(response, 404, "company_id")
    assert receiver.receiver.requests == []


def test_an_unknown_event_is_422(start_relay: StartRelay, company: uuid.UUID) -> None:
    relay = start_relay()

    response = relay.post(company, event="call-history-was-deleted")

    assert_json_error(response, 422, "event")
    assert "call-history-was-deleted" in response.json()["error"]


def test_get_on_the_events_endpoint_is_405_json(start_relay: StartRelay) -> None:
    relay = start_relay()

    for method in ("GET", "PUT", "DELETE"):
        response = http_calls.request(method, f"{relay.url}/v1/events", timeout=10)
        assert_json_error(response, 405)


def test_a_405_says_which_methods_are_allowed(start_relay: StartRelay) -> None:
    relay = start_relay()

    response = http_calls.get(f"{relay.url}/v1/events", timeout=10)

    assert response.status_code == 405
    assert "POST" in response.headers.get("allow", "")


def test_an_unknown_path_is_404_json(start_relay: StartRelay) -> None:
    relay = start_relay()

    for method, path in (("GET", "/"), ("POST", "/v1/event"), ("POST", "/v2/events")):
        response = http_calls.request(method, f"{relay.url}{path}", json={}, timeout=10)
        assert_json_error(response, 404)


def test_data_nested_as_deep_as_the_parser_allows_is_never_a_500(
    start_relay: StartRelay, pg_engine: Engine, receiver: RunningReceiver, company: uuid.UUID
) -> None:
    """Whatever depth the parser accepts must also survive building the delivery body."""
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay = start_relay()
    statuses: dict[int, int] = {}
    accepted: list[int] = []

    def status_at(depth: int) -> int:
        data = '{"a":' * depth + "1" + "}" * depth
        raw = f'{{"company_id": "{company}", "event": "{EVENT}", "data": {data}}}'
        statuses[depth] = post_raw(relay, raw.encode()).status_code
        assert statuses[depth] in (202, 400), statuses
        if statuses[depth] == 202:
            accepted.append(depth)
        return statuses[depth]

    # bisect for the deepest data the intake accepts (bounded: ~11 posts), then its neighbours
    low, high = 1, 2000
    assert status_at(low) == 202 and status_at(high) == 400
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if status_at(middle) == 202 else (low, middle)
    for depth in range(low - 2, low + 3):
        status_at(depth)
    assert statuses[low] == 202 and statuses[low + 1] == 400, statuses
    # and every accepted one, the deepest included, is delivered
    assert eventually(lambda: len(receiver.receiver.requests) == len(accepted))
    # and logged: PostgreSQL stores the deepest body in webhook_executions, no dead letter
    outbox = relay.service.outbox
    assert eventually(lambda: outbox.stats().pending == 0)
    assert outbox.stats().dead_letters == 0
    with pg_engine.connect() as conn:
        logged = conn.execute(sa.text("SELECT count(*) FROM webhook_executions")).scalar_one()
    assert logged == len(accepted)


# -- registry not loaded yet, spool full: 503 with Retry-After ----------------------------------


def test_spool_full_is_503_with_retry_after_and_nothing_accepted_is_lost(
    start_relay: StartRelay, pg_engine: Engine, receiver: RunningReceiver, company: uuid.UUID
) -> None:
    # Deliveries wait 0.2 s at the receiver, so the inbox holds every accepted event for a while.
    add_webhook(pg_engine, company, f"{receiver.url}/slow/0.2")
    relay = start_relay(spool_max_bytes=100_000, max_per_host=1)
    accepted: list[int] = []
    refused: httpx.Response | None = None
    for n in range(200):  # bounded: the spool fills within a few dozen events
        data = sample_event() | {"seq": n, "padding": "x" * 4000}
        response = relay.post(company, data, event_id=f"burst-{n}")
        assert response.status_code in (202, 503), response.text
        if response.status_code == 503:
            refused = response
            break
        assert response.json() == {"id": f"burst-{n}", "deliveries": 1}
        accepted.append(n)

    assert refused is not None, "the spool never filled"
    assert accepted, "the spool was full before the first event"
    assert int(refused.headers["retry-after"]) > 0
    assert "spool" in refused.json()["error"]
    # a caller retrying an event that was accepted gets its first answer, full spool or not
    repeat = relay.post(company, event_id="burst-0")
    assert (repeat.status_code, repeat.json()) == (202, {"id": "burst-0", "deliveries": 1})

    def delivered() -> set[int]:
        return {r.json()["data"]["seq"] for r in receiver.receiver.on("/slow/")}

    wait = max(10.0, len(accepted) * 0.2 + 5)
    assert eventually(lambda: delivered() == set(accepted), timeout=wait), (
        sorted(accepted),
        sorted(delivered()),
    )
    assert eventually(lambda: settled(relay))
    # once the inbox drained, the same relay accepts events again
    assert eventually(lambda: relay.post(company, event_id="after").status_code == 202)


def test_a_stopping_relay_answers_503_with_retry_after(
    start_relay: StartRelay, company: uuid.UUID
) -> None:
    relay = start_relay()
    assert relay.post(company).status_code == 202

    relay.service.intake.accepting = False  # what the first SIGTERM/SIGINT does

    response = relay.post(company)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "shutting down" in response.json()["error"]


def test_before_the_registry_first_loads_intake_is_503_then_202(
    start_relay: StartRelay, pg_engine: Engine, pg_cluster: PgCluster, company: uuid.UUID
) -> None:
    pg_cluster.stop()
    try:
        relay = start_relay(db_timeout_seconds=2)
        response = relay.post(company)
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) > 0
        assert "registry" in response.json()["error"]
    finally:
        pg_cluster.start()
    assert eventually(lambda: relay.service.registry.loaded, timeout=15)
    assert relay.post(company).status_code == 202


def test_the_router_behind_the_fast_path_sends_events_to_the_same_endpoint(
    unserved: RelayService,
) -> None:
    """POST /v1/events skips Starlette; Starlette's router (which answers the 405s) knows
    the same endpoint, so a request reaching it gets the same answers."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/events",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"text/plain")],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(unserved.app.fallback(scope, receive, send))

    assert sent[0]["status"] == 415
    assert json.loads(sent[1]["body"])["field"] == "content-type"
