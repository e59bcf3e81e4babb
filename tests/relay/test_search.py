"""Searching the execution log: rows in PostgreSQL and rows still in the spool, newest first,
page by page, each row exactly once however the drain moves rows between two reads."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from relay.db import migrations
from relay.db.engine import make_engine
from relay.errors import InputError
from relay.execution_log import pending
from relay.execution_log.record import ExecutionResult
from relay.execution_log.rows import ExecutionItem
from relay.execution_log.search import (
    ExecutionQuery,
    get_execution,
    search_executions,
)
from relay.execution_log.sink import ExecutionLogSink
from spool import Drainer, DrainPolicy, DurableQueue, Outcome, SpoolDatabase, SpoolRecord
from tests.support.relay_data import make_result

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
ALICE, BOB = uuid.uuid4(), uuid.uuid4()


def clock() -> datetime:
    return NOW


def spool(outbox: DurableQueue, result: ExecutionResult) -> uuid.UUID:
    return uuid.UUID(outbox.append(result.spool_key(), result.spool_payload()).record_id)


def result(company: uuid.UUID, seconds_ago: float, **fields: Any) -> ExecutionResult:
    made = make_result(company, created_at=NOW - timedelta(seconds=seconds_ago))
    return made._replace(**fields)


def drain(outbox: DurableQueue, engine: Engine) -> None:
    drained = Drainer(outbox, ExecutionLogSink(engine), DrainPolicy()).drain_once(force=True)
    assert drained.outcome is Outcome.WRITTEN


def search(engine: Engine, outbox: DurableQueue, **params: Any) -> list[ExecutionItem]:
    companies = params.pop("companies", None)
    page = search_executions(
        engine, outbox, ExecutionQuery(**params), companies=companies, clock=clock
    )
    return list(page.items)


def every_page(
    engine: Engine,
    outbox: DurableQueue,
    limit: int,
    between_pages: Callable[[int], None] = lambda _n: None,
    **params: Any,
) -> list[list[ExecutionItem]]:
    pages: list[list[ExecutionItem]] = []
    cursor = None
    for number in range(100):  # bounded: the tests have far fewer pages
        query = ExecutionQuery(limit=limit, cursor=cursor, **params)
        page = search_executions(engine, outbox, query, clock=clock)
        pages.append(list(page.items))
        if page.next_cursor is None:
            return pages
        between_pages(number)
        cursor = page.next_cursor
    raise AssertionError("more pages than rows")


class DrainingOutbox(DurableQueue):
    """The real outbox, with the drain committing right after a reader looked at the spool:
    the instant between a search's two reads."""

    def __init__(self, db: SpoolDatabase, engine: Engine) -> None:
        super().__init__(db, "outbox")
        self.engine = engine

    def recent(self, *args: Any, **kwargs: Any) -> list[SpoolRecord]:
        found = super().recent(*args, **kwargs)
        if self.stats().pending:
            drain(self, self.engine)
        return found


def test_a_row_still_in_the_spool_is_found_pending_then_from_the_database(
    pg_engine: Engine, outbox: DurableQueue
) -> None:
    row = spool(outbox, result(ALICE, 5))
    (found,) = search(pg_engine, outbox, phone="5511987654321")
    assert (found.execution_id, found.pending) == (row, True)
    drain(outbox, pg_engine)
    (found,) = search(pg_engine, outbox, phone="5511987654321")
    assert (found.execution_id, found.pending) == (row, False)


def test_a_row_drained_between_the_spool_read_and_the_database_read_is_found_once(
    pg_engine: Engine, spool_db: SpoolDatabase
) -> None:
    outbox = DrainingOutbox(spool_db, pg_engine)
    row = spool(outbox, result(ALICE, 5))
    found = search(pg_engine, outbox, company_id=ALICE)
    assert [(item.execution_id, item.pending) for item in found] == [(row, False)]
    assert outbox.stats().pending == 0


def expected_order(results: Collection[tuple[uuid.UUID, ExecutionResult]]) -> list[uuid.UUID]:
    return [row for row, _ in sorted(results, key=lambda p: (p[1].created_at, p[0]), reverse=True)]


@pytest.mark.parametrize("limit", [1, 6, 40])
def test_pages_are_complete_and_disjoint_while_rows_drain_between_them(
    pg_engine: Engine, outbox: DurableQueue, limit: int
) -> None:
    # 30 rows, in threes sharing one instant (ties are ordered by execution_id); the older
    # half is in the database already, the newer half pending, drained after the first page.
    made = []
    for n in range(30):
        r = result(ALICE if n % 2 else BOB, 100 - n // 3)
        made.append((spool(outbox, r), r))
        if n == 14:
            drain(outbox, pg_engine)

    pages = every_page(
        pg_engine, outbox, limit, lambda n: drain(outbox, pg_engine) if n == 0 else None
    )
    seen = [item.execution_id for page in pages for item in page]
    assert seen == expected_order(made)
    assert all(len(page) == limit for page in pages[:-1])
    assert any(item.pending for item in pages[0])


def test_rows_of_other_companies_stay_hidden_pending_or_logged(
    pg_engine: Engine, outbox: DurableQueue
) -> None:
    logged = {company: spool(outbox, result(company, 20)) for company in (ALICE, BOB)}
    drain(outbox, pg_engine)
    waiting = {company: spool(outbox, result(company, 10)) for company in (ALICE, BOB)}
    only_alice = frozenset({ALICE})

    assert {i.execution_id for i in search(pg_engine, outbox, companies=only_alice)} == {
        logged[ALICE],
        waiting[ALICE],
    }
    assert search(pg_engine, outbox, company_id=BOB, companies=only_alice) == []
    many = frozenset({ALICE, *(uuid.uuid4() for _ in range(pending.PER_COMPANY_READS))})
    assert {i.execution_id for i in search(pg_engine, outbox, companies=many)} == {
        logged[ALICE],
        waiting[ALICE],
    }
    assert search(pg_engine, outbox, companies=frozenset()) == []
    assert len(search(pg_engine, outbox)) == 4  # no limit: everything
    for row in (logged[BOB], waiting[BOB]):
        with pytest.raises(InputError) as refused:
            get_execution(pg_engine, outbox, row, companies=only_alice)
        assert (refused.value.status, refused.value.field) == (404, "execution_id")
        assert get_execution(pg_engine, outbox, row).execution_id == row


@pytest.mark.parametrize(
    "spelling", ["+55 (82) 98862-8425", "55 82 98862 8425", "5582988628425", "82-98862-8425"]
)
def test_a_number_is_found_however_it_is_spelled(
    pg_engine: Engine, outbox: DurableQueue, spelling: str
) -> None:
    number = "5582988628425"
    drained = spool(outbox, result(ALICE, 30, phone_number=number))
    drain(outbox, pg_engine)
    waiting = spool(outbox, result(ALICE, 20, phone_number=number))
    # The sample body holds the number too (callHistory.number): only the column counts.
    spool(outbox, result(ALICE, 10, phone_number="5511987654321"))
    found = [i.execution_id for i in search(pg_engine, outbox, phone=spelling)]
    assert found == ([waiting, drained] if spelling != "82-98862-8425" else [])


def test_each_filter_narrows_pending_and_logged_rows_alike(
    pg_engine: Engine, outbox: DurableQueue
) -> None:
    webhook = uuid.uuid4()
    rows: dict[str, list[uuid.UUID]] = {"logged": [], "pending": []}
    for place in ("logged", "pending"):
        base = 100 if place == "logged" else 50
        for n, fields in enumerate(
            [
                {"webhook_id": webhook},
                {"status": "failed", "response_status": 500, "error": "HTTP 500"},
                {"event_type": "other-event"},
                {"message_id": f"msg_{place}"},
                {},
            ]
        ):
            rows[place].append(spool(outbox, result(ALICE, base - n, **fields)))
        if place == "logged":
            drain(outbox, pg_engine)

    def ids(**params: Any) -> set[uuid.UUID]:
        return {item.execution_id for item in search(pg_engine, outbox, **params)}

    both = list(zip(rows["logged"], rows["pending"], strict=True))
    assert ids(webhook_id=webhook) == set(both[0])
    assert ids(status="failed") == set(both[1])
    assert len(ids(status="success")) == 8
    assert ids(event_type="other-event") == set(both[2])
    assert ids(message_id="msg_pending") == {both[3][1]}
    assert ids(message_id="msg_pending", status="failed") == set()
    assert ids(company_id=ALICE, status="failed") == set(both[1])
    assert ids(company_id=BOB) == set()


def test_the_window_defaults_to_the_last_week_and_bounds_both_places(
    pg_engine: Engine, outbox: DurableQueue
) -> None:
    week = 7 * 24 * 3600
    old = spool(outbox, result(ALICE, week + 60))
    recent = spool(outbox, result(ALICE, week - 60))
    drain(outbox, pg_engine)
    old_pending = spool(outbox, result(ALICE, week + 30))
    future = spool(outbox, result(ALICE, -60))
    assert [i.execution_id for i in search(pg_engine, outbox)] == [recent]
    a_month = {"since": NOW - timedelta(days=30), "until": NOW + timedelta(hours=1)}
    assert [i.execution_id for i in search(pg_engine, outbox, **a_month)] == [
        future,
        recent,
        old_pending,
        old,
    ]


def test_a_row_is_shown_with_its_body_from_the_spool_and_from_the_database(
    pg_engine: Engine, outbox: DurableQueue
) -> None:
    body = '{"event_type": "call-history-was-created", "data": {"callHistory": {"number": 1}}}'
    row = spool(outbox, result(ALICE, 5, request_payload=body))
    pending_detail = get_execution(pg_engine, outbox, row)
    drain(outbox, pg_engine)
    logged_detail = get_execution(pg_engine, outbox, row)
    assert pending_detail.pending and not logged_detail.pending
    for detail in (pending_detail, logged_detail):
        assert detail.request_payload == {
            "event_type": "call-history-was-created",
            "data": {"callHistory": {"number": 1}},
        }
        assert detail.as_json()["execution_id"] == str(row)
    assert set(logged_detail.as_json()) == ITEM_FIELDS | {"request_payload"}
    with pytest.raises(InputError) as unknown:
        get_execution(pg_engine, outbox, uuid.uuid4())
    assert (unknown.value.status, unknown.value.field) == (404, "execution_id")


ITEM_FIELDS = {
    "execution_id",
    "created_at",
    "company_id",
    "webhook_id",
    "event_type",
    "message_id",
    "attempt",
    "status",
    "response_status",
    "error",
    "duration_ms",
    "phone_number",
    "pending",
}


def test_a_page_serialises_to_the_fields_the_api_names(
    pg_engine: Engine, outbox: DurableQueue
) -> None:
    first = spool(outbox, result(ALICE, 5))
    spool(outbox, result(ALICE, 6))
    page = search_executions(pg_engine, outbox, ExecutionQuery(limit=1), clock=clock).as_json()
    assert set(page) == {"items", "next_cursor"}
    (item,) = page["items"]
    assert set(item) == ITEM_FIELDS
    assert item["execution_id"] == str(first) and item["pending"] is True
    assert item["created_at"] == (NOW - timedelta(seconds=5)).isoformat()
    assert isinstance(page["next_cursor"], str)


def test_the_spool_is_read_only_as_far_back_as_its_bound(
    pg_engine: Engine, outbox: DurableQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pending, "PENDING_SCAN_ROWS", 3)
    rows = [spool(outbox, result(ALICE, 60 - n)) for n in range(5)]
    assert [i.execution_id for i in search(pg_engine, outbox)] == rows[:1:-1]
    drain(outbox, pg_engine)
    assert [i.execution_id for i in search(pg_engine, outbox)] == rows[::-1]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"company_id": "acme"}, "company_id"),
        ({"webhook_id": "12"}, "webhook_id"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-12-03T10:00:00"}, "until"),
        ({"since": "2026-12-03T10:00:00Z", "until": "2026-12-03T09:00:00Z"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "pending"}, "status"),
        ({"phone": "call me"}, "phone"),
        ({"phone": "1" * 21}, "phone"),
        ({"message_id": ""}, "message_id"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(
    pg_engine: Engine, outbox: DurableQueue, params: dict[str, str], field: str
) -> None:
    with pytest.raises(InputError) as refused:
        query = ExecutionQuery.from_params(params)
        search_executions(pg_engine, outbox, query, clock=clock)
    assert (refused.value.status, refused.value.field) == (422, field)


def test_parameters_as_text_make_the_same_query() -> None:
    query = ExecutionQuery.from_params(
        {
            "company_id": str(ALICE),
            "phone": "+55 (82) 98862-8425",
            "status": "failed",
            "since": "2026-12-01T00:00:00-03:00",
            "limit": "20",
        }
    )
    assert query == ExecutionQuery(
        company_id=ALICE,
        phone="5582988628425",
        status="failed",
        since=datetime(2026, 12, 1, 3, 0, tzinfo=UTC),
        limit=20,
    )


def test_the_embedded_sqlite_default_is_searched_the_same_way(
    tmp_path: Path, outbox: DurableQueue
) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'relay.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    try:
        made = []
        for n in range(12):
            r = result(ALICE, 50 - n // 2)
            made.append((spool(outbox, r), r))
            if n == 5:
                drain(outbox, engine)
        pages = every_page(engine, outbox, 5, lambda n: drain(outbox, engine) if n == 0 else None)
        assert [item.execution_id for page in pages for item in page] == expected_order(made)
        assert [i.pending for i in search(engine, outbox, phone="5511987654321")] == [False] * 12
        assert get_execution(engine, outbox, made[0][0]).request_payload["event_type"] == (
            "call-history-was-created"
        )
    finally:
        engine.dispose()
