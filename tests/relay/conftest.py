"""Fixtures for the relay service: a recording receiver and an in-process relay, both real
uvicorn servers on 127.0.0.1, over the suite's PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.schema import companies, events
from relay.inbox.store import EventInbox
from relay.registry import writes
from relay.registry.cache import Registry
from relay.registry.filters import Filter, parse_filters
from relay.settings import RelaySettings
from spool import DurableQueue, SpoolDatabase
from tests.support.api_fixtures import (
    admin_api,
    event_catalog,
    make_token,
    relay_url,
    second_event,
)
from tests.support.receivers import RunningReceiver, running_receiver
from tests.support.relay_fixtures import (
    outbox,
    pg_engine,
    pg_url,
    relay_cli,
    relay_processes,
    serving_relay,
    sink,
)
from tests.support.relay_launcher import EVENT, InProcessRelay


@pytest.fixture
def receiver() -> Iterator[RunningReceiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def second_receiver() -> Iterator[RunningReceiver]:
    with running_receiver() as running:
        yield running


def add_company(engine: Engine, name: str = "Acme Cobrancas") -> uuid.UUID:
    return writes.add_company(engine, name).id


def add_webhook(
    engine: Engine,
    company: uuid.UUID,
    url: str,
    *,
    event: str = EVENT,
    filters: list[dict[str, Any]] | None = None,
    secret: str | None = None,
) -> uuid.UUID:
    parsed: tuple[Filter, ...] = parse_filters(filters or [])
    return writes.add_webhook(
        engine, company_id=company, url=url, event=event, filters=parsed, secret=secret
    ).id


def add_event_type(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(events.insert().values(name=name, display_name=name))


def remove_event_type(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(events).where(events.c.name == name))


@dataclass
class Parts:
    """What a dispatcher works on, without a relay around it."""

    spool: SpoolDatabase
    inbox: EventInbox
    outbox: DurableQueue
    registry: Registry
    company: uuid.UUID


@pytest.fixture
def parts(spool_db: SpoolDatabase, pg_engine: Engine) -> Parts:
    inbox = EventInbox(spool_db, idempotency_window=timedelta(hours=24))
    outbox = DurableQueue(spool_db, "outbox")
    return Parts(spool_db, inbox, outbox, Registry(pg_engine), add_company(pg_engine))


@pytest.fixture
def start_relay(
    pg_url: str, tmp_path: Path, pg_engine: Engine
) -> Iterator[Callable[..., InProcessRelay]]:
    """Start an in-process relay on the suite's database with a fresh spool, tuned to
    drain and notice registry changes within a fraction of a second; stopped at teardown."""
    running: list[InProcessRelay] = []

    def start(**overrides: Any) -> InProcessRelay:
        tuned: dict[str, Any] = {
            "drain_interval_seconds": 0.2,
            "registry_check_seconds": 0.2,
            "max_age_seconds": 0.5,
            "shutdown_grace_seconds": 0.5,
            "allow_private_destinations": True,  # receivers on 127.0.0.1
        }
        settings = RelaySettings(
            database_url=pg_url,
            spool_path=tmp_path / "spool" / "spool.db",
            **(tuned | overrides),
        )
        relay = InProcessRelay(settings)
        running.append(relay)
        return relay.start()

    yield start
    for relay in running:
        relay.stop()


def platform_columns(engine: Engine, company_id: uuid.UUID) -> tuple[object, object]:
    """The company's stored platform token and cluster, as the database holds them."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(companies.c.platform_token, companies.c.cluster).where(
                companies.c.id == company_id
            )
        ).one()
    return row.platform_token, row.cluster
