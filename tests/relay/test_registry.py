"""The registry over real PostgreSQL: what a snapshot holds, when it reloads, and that the last
good snapshot keeps serving while the database is down."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.engine import make_engine
from relay.db.schema import companies, events, webhook_events, webhooks
from relay.registry import writes
from relay.registry.cache import Registry, fingerprint, load_snapshot
from relay.registry.filters import parse_filters
from tests.relay.conftest import (
    EVENT,
    add_company,
    add_event_type,
    add_webhook,
    remove_event_type,
)
from tests.support.pg_cluster import PgCluster
from tests.support.relay_data import sample_event
from tests.support.relay_launcher import InProcessRelay
from tests.support.waiting import eventually

URL = "http://127.0.0.1:9/hook"
PASSES = [{"field_path": "callHistory.campaign.id", "operator": "equals", "value": 201074}]
FAILS = [{"field_path": "callHistory.campaign.id", "operator": "equals", "value": 1}]


@pytest.fixture
def registry_engine(pg_url: str, pg_engine: Engine) -> Iterator[Engine]:
    """A separate engine for the registry, as a running relay has (short timeouts)."""
    engine = make_engine(pg_url, timeout_seconds=2)
    yield engine
    engine.dispose()


def event_id(db: Engine | sa.Connection, name: str = EVENT) -> int:
    query = sa.select(events.c.id).where(events.c.name == name)
    if isinstance(db, sa.Connection):
        return int(db.execute(query).scalar_one())
    with db.connect() as conn:
        return int(conn.execute(query).scalar_one())


def raw_company(engine: Engine, status: str | None) -> uuid.UUID:
    company_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(companies.insert().values(id=company_id, name=f"raw {status}", status=status))
    return company_id


def raw_webhook(
    engine: Engine,
    company: uuid.UUID,
    *,
    status: str | None = "active",
    deleted: bool | None = False,
    filters: Any = (),
    event: str = EVENT,
) -> uuid.UUID:
    """A webhook row written directly (as other tools or older versions might have)."""
    webhook_id = uuid.uuid4()
    now = datetime.now(UTC)
    subscription: dict[str, Any] = {"webhook_id": webhook_id, "event_id": event_id(engine, event)}
    if filters != ():
        subscription["filters"] = filters
    with engine.begin() as conn:
        conn.execute(
            webhooks.insert().values(
                id=webhook_id,
                company_id=company,
                url=f"{URL}/{webhook_id}",
                status=status,
                deleted=deleted,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(webhook_events.insert().values(**subscription))
    return webhook_id


# -- load_snapshot ------------------------------------------------------------------------------


def test_an_empty_registry_still_knows_the_events(pg_engine: Engine) -> None:
    snapshot = load_snapshot(pg_engine)
    assert snapshot.companies == {}
    assert snapshot.webhooks == {}
    assert snapshot.event_ids[EVENT] == event_id(pg_engine)


def test_only_active_not_deleted_webhooks_of_active_companies_are_served(
    pg_engine: Engine,
) -> None:
    active = add_company(pg_engine)
    inactive = raw_company(pg_engine, "inactive")
    null_status = raw_company(pg_engine, None)
    served = raw_webhook(pg_engine, active)
    disabled = raw_webhook(pg_engine, active, status="disabled")
    deleted = raw_webhook(pg_engine, active, deleted=True)
    null_flags = raw_webhook(pg_engine, active, status=None, deleted=None)
    of_inactive = raw_webhook(pg_engine, inactive)
    of_null_status = raw_webhook(pg_engine, null_status)

    snapshot = load_snapshot(pg_engine)

    assert set(snapshot.webhooks) == {served, null_flags, of_null_status}
    for gone in (disabled, deleted, of_inactive):
        assert gone not in snapshot.webhooks
    assert snapshot.companies[active].active
    assert not snapshot.companies[inactive].active  # known, so intake can answer 404
    assert snapshot.companies[null_status].active
    assert {s.webhook_id for s in snapshot.subscriptions[(active, EVENT)]} == {served, null_flags}
    assert (inactive, EVENT) not in snapshot.subscriptions
    assert snapshot.matching(inactive, EVENT, sample_event()) == []


def test_null_filters_are_no_filters(pg_engine: Engine) -> None:
    company = add_company(pg_engine)
    sql_null = raw_webhook(pg_engine, company, filters=sa.null())
    json_null = raw_webhook(pg_engine, company, filters=None)  # stored as JSON `null`
    defaulted = raw_webhook(pg_engine, company)  # the column's server default, '[]'
    with pg_engine.connect() as conn:
        stored: dict[uuid.UUID, str | None] = dict(
            conn.execute(
                sa.select(
                    webhook_events.c.webhook_id,
                    sa.cast(webhook_events.c.filters, sa.Text()),
                )
            ).all()
        )
    assert stored == {sql_null: None, json_null: "null", defaulted: "[]"}

    snapshot = load_snapshot(pg_engine)

    for webhook_id in (sql_null, json_null, defaulted):
        assert snapshot.webhooks[webhook_id].filters == ()
    assert len(snapshot.matching(company, EVENT, {})) == 3


def test_stored_filters_are_parsed_and_kept_on_the_subscription(pg_engine: Engine) -> None:
    company = add_company(pg_engine)
    webhook = add_webhook(pg_engine, company, URL, filters=PASSES, secret="whsec_c2VjcmV0")

    subscription = load_snapshot(pg_engine).webhooks[webhook]

    assert subscription.filters == parse_filters(PASSES)
    assert subscription.secret == "whsec_c2VjcmV0"
    assert subscription.url == URL
    assert subscription.company_id == company
    assert subscription.event_name == EVENT
    assert subscription.event_id == event_id(pg_engine)


def test_a_subscription_with_invalid_stored_filters_is_skipped_not_fatal(
    pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    company = add_company(pg_engine)
    broken = raw_webhook(
        pg_engine, company, filters=[{"field_path": "a", "operator": "eq", "value": 1}]
    )
    not_a_list = raw_webhook(pg_engine, company, filters={"field_path": "a"})
    fine = raw_webhook(pg_engine, company)

    snapshot = load_snapshot(pg_engine)

    assert set(snapshot.webhooks) == {fine}
    assert str(broken) in caplog.text and str(not_a_list) in caplog.text


@pytest.fixture
def other_event(pg_engine: Engine) -> Iterator[str]:
    """A second event type (the events table is not truncated between tests: clean up)."""
    name = f"agent-was-paused-{uuid.uuid4().hex[:8]}"
    add_event_type(pg_engine, name)
    yield name
    with pg_engine.begin() as conn:
        conn.execute(
            sa.delete(webhook_events).where(webhook_events.c.event_id == event_id(conn, name))
        )
    remove_event_type(pg_engine, name)


def test_matching_applies_every_filter(pg_engine: Engine, other_event: str) -> None:
    company = add_company(pg_engine)
    other_company = add_company(pg_engine, "Other")
    passes = add_webhook(pg_engine, company, f"{URL}/p", filters=PASSES)
    add_webhook(pg_engine, company, f"{URL}/f", filters=FAILS)
    both = add_webhook(pg_engine, company, f"{URL}/b", filters=PASSES + FAILS)
    unfiltered = add_webhook(pg_engine, company, f"{URL}/u")
    add_webhook(pg_engine, company, f"{URL}/e", event=other_event)
    add_webhook(pg_engine, other_company, f"{URL}/o")

    snapshot = load_snapshot(pg_engine)
    matched = {s.webhook_id for s in snapshot.matching(company, EVENT, sample_event())}

    assert matched == {passes, unfiltered}
    assert both in snapshot.webhooks  # subscribed, just filtered out
    assert {s.webhook_id for s in snapshot.matching(company, EVENT, {})} == {unfiltered}
    assert len(snapshot.matching(company, other_event, sample_event())) == 1
    assert snapshot.matching(company, "no-such-event", sample_event()) == []
    assert snapshot.matching(uuid.uuid4(), EVENT, sample_event()) == []


def test_subscription_finds_a_webhooks_current_subscription(pg_engine: Engine) -> None:
    company = add_company(pg_engine)
    webhook = add_webhook(pg_engine, company, URL, filters=FAILS)

    snapshot = load_snapshot(pg_engine)

    found = snapshot.subscription(webhook, EVENT)
    assert found is not None and found.webhook_id == webhook
    assert snapshot.subscription(webhook, "other-event") is None
    assert snapshot.subscription(uuid.uuid4(), EVENT) is None


# -- fingerprint and refresh --------------------------------------------------------------------


def test_the_fingerprint_moves_on_every_cli_change_and_only_then(pg_engine: Engine) -> None:
    first = fingerprint(pg_engine)
    assert fingerprint(pg_engine) == first
    company = writes.add_company(pg_engine, "Acme").id
    with_company = fingerprint(pg_engine)
    assert with_company != first
    webhook = add_webhook(pg_engine, company, URL)
    with_webhook = fingerprint(pg_engine)
    assert with_webhook != with_company
    writes.disable_webhook(pg_engine, webhook)
    assert fingerprint(pg_engine) != with_webhook
    assert fingerprint(pg_engine) == fingerprint(pg_engine)


def test_not_loaded_before_the_first_successful_load(registry_engine: Engine) -> None:
    registry = Registry(registry_engine)

    assert registry.loaded is False
    assert registry.snapshot.webhooks == {}
    assert registry.snapshot.companies == {}

    assert registry.refresh() is True
    assert registry.loaded is True


def test_refresh_if_changed_reloads_after_admin_changes_and_not_otherwise(
    pg_engine: Engine, registry_engine: Engine
) -> None:
    company = add_company(pg_engine)
    registry = Registry(registry_engine)
    assert registry.refresh_if_changed() is True  # never loaded: any fingerprint is news
    assert registry.loaded
    loaded = registry.snapshot

    assert registry.refresh_if_changed() is False
    assert registry.snapshot is loaded

    webhook = writes.add_webhook(
        pg_engine,
        company_id=company,
        url=URL,
        event=EVENT,
        filters=parse_filters(PASSES),
        secret=None,
    ).id
    assert registry.refresh_if_changed() is True
    assert webhook in registry.snapshot.webhooks
    assert [s.webhook_id for s in registry.snapshot.matching(company, EVENT, sample_event())] == [
        webhook
    ]
    assert registry.refresh_if_changed() is False

    writes.disable_webhook(pg_engine, webhook)
    assert registry.refresh_if_changed() is True
    assert webhook not in registry.snapshot.webhooks
    assert registry.snapshot.matching(company, EVENT, sample_event()) == []
    assert registry.refresh_if_changed() is False


def test_a_new_company_is_noticed(pg_engine: Engine, registry_engine: Engine) -> None:
    registry = Registry(registry_engine)
    registry.refresh()

    company = writes.add_company(pg_engine, "Late Comer").id

    assert registry.refresh_if_changed() is True
    assert company in registry.snapshot.companies


def test_refresh_always_reloads(pg_engine: Engine, registry_engine: Engine) -> None:
    registry = Registry(registry_engine)
    registry.refresh()
    before = registry.snapshot

    assert registry.refresh() is True
    assert registry.snapshot is not before
    assert registry.snapshot == before


def test_a_running_relay_picks_up_cli_changes_within_its_check_interval(
    start_relay: Callable[..., InProcessRelay], pg_engine: Engine
) -> None:
    company = add_company(pg_engine)
    relay = start_relay()  # checks the fingerprint every 0.2 s

    def deliveries() -> int:
        return int(relay.post(company).json()["deliveries"])

    assert deliveries() == 0
    webhook = add_webhook(pg_engine, company, URL)
    assert eventually(lambda: deliveries() == 1, timeout=5, step=0.1)
    writes.disable_webhook(pg_engine, webhook)
    assert eventually(lambda: deliveries() == 0, timeout=5, step=0.1)


# -- database outages ---------------------------------------------------------------------------


def test_the_last_good_snapshot_keeps_serving_while_postgresql_is_down(
    pg_engine: Engine, registry_engine: Engine, pg_cluster: PgCluster
) -> None:
    company = add_company(pg_engine)
    webhook = add_webhook(pg_engine, company, URL)
    registry = Registry(registry_engine)
    assert registry.refresh()
    good = registry.snapshot

    pg_cluster.stop()
    try:
        assert registry.refresh() is False
        assert registry.refresh_if_changed() is False
        assert registry.loaded is True
        assert registry.snapshot is good
        assert [s.webhook_id for s in good.matching(company, EVENT, sample_event())] == [webhook]
    finally:
        pg_cluster.start()

    # back up: the next refreshes recover (a stale pooled connection may fail one attempt)
    assert eventually(registry.refresh, timeout=10, step=0.1)
    assert webhook in registry.snapshot.webhooks


def test_a_registry_that_never_loaded_stays_not_loaded_while_postgresql_is_down(
    registry_engine: Engine, pg_cluster: PgCluster
) -> None:
    registry = Registry(registry_engine)
    pg_cluster.stop()
    try:
        assert registry.refresh() is False
        assert registry.refresh_if_changed() is False
        assert registry.loaded is False
        assert registry.snapshot.webhooks == {}
    finally:
        pg_cluster.start()
    assert eventually(registry.refresh, timeout=10, step=0.1)
    assert registry.loaded is True
