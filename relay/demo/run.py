"""`relay demo`: the whole loop on one machine, and what the spool saved the database.

A local receiver, a few companies and webhooks (one filtered), a burst of realistic
call-history events posted to a real relay, live batch log lines, then a summary.
"""

from __future__ import annotations

import copy
import json
import random
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from relay.db import migrations
from relay.db.engine import make_engine
from relay.demo.local_server import Receive, Scope, Send, ThreadedServer, read_body
from relay.execution_log.sink import ExecutionLogSink
from relay.registry import writes
from relay.registry.filters import parse_filters
from relay.runtime.service import RelayService
from relay.settings import RelaySettings

EVENT = "call-history-was-created"
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "call-history-was-created.json"
CONVERTED_ONLY = [
    {"field_path": "callHistory.qualification.conversion", "operator": "equals", "value": True}
]


@dataclass(frozen=True)
class DemoSummary:
    events: int
    posts: int
    log_rows: int
    transactions: int
    seconds: float

    def render(self) -> str:
        saved = self.log_rows / self.transactions if self.transactions else 0.0
        return "\n".join(
            [
                "",
                "demo summary",
                f"  events accepted (202)        {self.events:>7}",
                f"  POSTs delivered              {self.posts:>7}",
                f"  execution log rows           {self.log_rows:>7}",
                f"  database transactions used   {self.transactions:>7}",
                f"  one transaction per POST     {self.log_rows:>7}  ({saved:.0f}x more)",
                f"  wall time                    {self.seconds:>7.1f} s",
            ]
        )


class CountingReceiver:
    """A receiver that answers 200 and counts POSTs."""

    def __init__(self) -> None:
        self.posts = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        with self._lock:
            self.posts += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def run_demo(*, events: int, companies: int, seed: int = 7) -> DemoSummary:
    started = time.monotonic()
    rng = random.Random(seed)
    sample = json.loads(SAMPLE.read_text())
    with tempfile.TemporaryDirectory(prefix="relay-demo-") as workdir:
        url = f"sqlite:///{workdir}/relay.db"
        migrations.upgrade(url)
        receiver = CountingReceiver()
        with ThreadedServer(receiver) as receiver_server:
            company_ids = _register(url, receiver_server.url, companies)
            token = secrets.token_urlsafe(16)
            settings = RelaySettings(
                database_url=url,
                spool_path=Path(workdir) / "spool.db",
                intake_token=token,
                max_age_seconds=2,
                drain_interval_seconds=0.5,
                allow_private_destinations=True,  # its receiver is on 127.0.0.1
            )
            with _relay(settings) as (service, relay_url):
                _burst(relay_url, token, company_ids, sample, rng, events)
                assert service.drain is not None
                sink = service.drain.scheduler.drainer.sink
                assert isinstance(sink, ExecutionLogSink)
                _wait_until_logged(service, receiver, deadline=60)
            return DemoSummary(
                events=events,
                posts=receiver.posts,
                log_rows=sink.rows,
                transactions=sink.transactions,
                seconds=time.monotonic() - started,
            )


def _register(url: str, receiver_url: str, companies: int) -> list[Any]:
    engine = make_engine(url)
    ids = []
    try:
        for n in range(companies):
            company = writes.add_company(engine, f"Demo company {n + 1}")
            for path, filters in (("all", []), ("converted", CONVERTED_ONLY)):
                writes.add_webhook(
                    engine,
                    company_id=company.id,
                    url=f"{receiver_url}/{company.id}/{path}",
                    event=EVENT,
                    filters=parse_filters(filters),
                    secret=writes.new_signing_secret(),
                )
            ids.append(company.id)
    finally:
        engine.dispose()
    return ids


@contextmanager
def _relay(settings: RelaySettings) -> Iterator[tuple[RelayService, str]]:
    service = RelayService(settings)
    server = ThreadedServer(service.app, lifespan="on").start()
    try:
        yield service, server.url
    finally:
        server.stop()


def _burst(
    relay_url: str,
    token: str,
    company_ids: list[Any],
    sample: dict[str, Any],
    rng: random.Random,
    events: int,
) -> None:
    bodies = [_event(rng.choice(company_ids), sample, rng) for _ in range(events)]
    with (
        httpx.Client(
            base_url=relay_url, headers={"authorization": f"Bearer {token}"}, timeout=30
        ) as client,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        answers = list(pool.map(lambda body: client.post("/v1/events", json=body), bodies))
    refused = [a for a in answers if a.status_code != 202]
    if refused:
        raise RuntimeError(f"{len(refused)} events refused, e.g. {refused[0].text}")


def _event(company_id: Any, sample: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    data = copy.deepcopy(sample)
    call = data["callHistory"]
    call["number"] = f"55{rng.randint(11, 99)}9{rng.randint(10_000_000, 99_999_999)}"
    call["_id"] = secrets.token_hex(12)
    call["speaking_time"] = rng.randint(0, 900)
    call["qualification"]["conversion"] = rng.random() < 0.3
    return {"company_id": str(company_id), "event": EVENT, "data": data}


def _wait_until_logged(service: RelayService, receiver: CountingReceiver, deadline: float) -> None:
    stop = threading.Event()
    for _ in range(int(deadline / 0.1)):  # bounded wait for the last batch to drain
        in_flight = service.worker.dispatcher.in_flight if service.worker else 0
        idle = service.inbox.queue.count() == 0 and in_flight == 0
        if idle and service.outbox.stats().pending == 0 and receiver.posts:
            return
        stop.wait(0.1)
    raise RuntimeError("the demo did not finish draining in time")
