"""Fixtures for the relay service: a recording receiver and an in-process relay, both real
uvicorn servers on 127.0.0.1, over the suite's PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.schema import events
from relay.delivery.worker import DeliveryWorker
from relay.inbox.store import EventInbox
from relay.registry import writes
from relay.registry.cache import Registry
from relay.registry.filters import Filter, parse_filters
from relay.runtime.service import RelayService
from relay.settings import RelaySettings
from spool import DurableQueue, SpoolDatabase
from tests.support.api_fixtures import (
    admin_api,
    event_catalog,
    make_token,
    relay_url,
    second_event,
)
from tests.support.relay_data import sample_event
from tests.support.relay_fixtures import outbox, pg_engine, pg_url, sink
from tests.support.servers import Receiver, ThreadedServer

EVENT = "call-history-was-created"


@dataclass
class RunningReceiver:
    receiver: Receiver
    url: str


@pytest.fixture
def receiver() -> Iterator[RunningReceiver]:
    recorder = Receiver()
    with ThreadedServer(recorder) as server:
        yield RunningReceiver(recorder, server.url)


@pytest.fixture
def second_receiver() -> Iterator[RunningReceiver]:
    recorder = Receiver()
    with ThreadedServer(recorder) as server:
        yield RunningReceiver(recorder, server.url)


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


@dataclass
class RunningRelay:
    service: RelayService
    server: ThreadedServer
    url: str

    @property
    def worker(self) -> DeliveryWorker:
        """The in-process deliveries (tests run the dispatcher inside the relay's process)."""
        assert self.service.worker is not None
        return self.service.worker

    def post(
        self,
        company: uuid.UUID,
        data: dict[str, Any] | None = None,
        *,
        event: str = EVENT,
        event_id: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "company_id": str(company),
            "event": event,
            "data": sample_event() if data is None else data,
        }
        if event_id is not None:
            body["id"] = event_id
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.post(
            f"{self.url}/v1/events",
            content=json.dumps(body),
            headers={"content-type": "application/json", **headers},
            timeout=10,
        )


@pytest.fixture
def start_relay(
    pg_url: str, tmp_path: Path, pg_engine: Engine
) -> Iterator[Callable[..., RunningRelay]]:
    """Start a relay on the suite's database with a fresh spool; stopped at teardown."""
    running: list[RunningRelay] = []

    def start(**overrides: Any) -> RunningRelay:
        overrides.setdefault("allow_private_destinations", True)  # receivers on 127.0.0.1
        settings = RelaySettings(
            database_url=pg_url,
            spool_path=tmp_path / "spool" / "spool.db",
            drain_interval_seconds=0.2,
            registry_check_seconds=0.2,
            max_age_seconds=0.5,
            shutdown_grace_seconds=0.5,
            **overrides,
        )
        service = RelayService(settings)
        server = ThreadedServer(service.app, lifespan="on").start()
        relay = RunningRelay(service, server, server.url)
        running.append(relay)
        return relay

    yield start
    for relay in running:
        relay.server.stop()
