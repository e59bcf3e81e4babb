"""The operator's endpoints on a real relay: /healthz, /readyz through a PostgreSQL outage
and a full spool, and /metrics moving as deliveries, retries, drains and intake answers say,
with every listed series there from the start (in-process, and on a real `relay serve`).

Counters are process-wide (several relays run in this test process), so each test compares
what it reads before and after its own scenario.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from tests.relay.conftest import add_company, add_webhook
from tests.support import http_calls
from tests.support.pg_cluster import PgCluster
from tests.support.receivers import RunningReceiver
from tests.support.relay_launcher import InProcessRelay, RelayProcess
from tests.support.waiting import eventually

Series = tuple[str, tuple[tuple[str, str], ...]]
Samples = dict[Series, float]


def _histogram(name: str) -> list[Series]:
    return [(f"{name}_count", ()), (f"{name}_sum", ()), (f"{name}_bucket", (("le", "+Inf"),))]


# Every counter and histogram of the README's metrics table (and the drain-failure gauge the
# alerts read), with each label value known up front.
LISTED_SERIES: list[Series] = [
    ("relay_drain_rows_total", ()),
    ("relay_drain_batches_total", ()),
    *_histogram("relay_drain_seconds"),
    ("relay_db_transactions_total", ()),
    *[("relay_db_errors_total", (("error_class", c),)) for c in ("transient", "record", "config")],
    ("relay_drain_failing_since_timestamp_seconds", ()),
    *[
        ("relay_deliveries_total", (("outcome", o),))
        for o in ("success", "retry", "failed", "dropped")
    ],
    *_histogram("relay_delivery_seconds"),
    ("relay_retries_scheduled_total", ()),
    *[
        ("relay_intake_responses_total", (("code", c),))
        for c in ("202", "400", "401", "404", "405", "413", "415", "422", "503")
    ],
]


class Served(Protocol):
    """A relay under test, in-process or a process of its own: where it listens."""

    @property
    def url(self) -> str: ...


def metrics_page(relay: Served) -> str:
    answer = http_calls.get(f"{relay.url}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


def scrape(relay: Served) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics_page(relay))
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def ready(relay: InProcessRelay) -> httpx.Response:
    return http_calls.get(f"{relay.url}/readyz", timeout=30)


def test_healthz_and_readyz_answer_ok_on_a_running_relay(
    start_relay: Callable[..., InProcessRelay],
) -> None:
    relay = start_relay()
    assert http_calls.get(f"{relay.url}/healthz", timeout=10).json() == {"status": "ok"}
    answer = ready(relay)
    assert (answer.status_code, answer.json()) == (200, {"ready": True})


def test_metrics_count_deliveries_retries_drains_and_intake_answers(
    start_relay: Callable[..., InProcessRelay], pg_engine: Engine, receiver: RunningReceiver
) -> None:
    company = add_company(pg_engine)
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    add_webhook(pg_engine, company, f"{receiver.url}/status/410")  # gone: never retried
    add_webhook(pg_engine, company, f"{receiver.url}/status/500")  # retried (5 s later)
    relay = start_relay()
    before = scrape(relay)

    for n in range(3):
        assert relay.post(company, event_id=f"m-{n}").status_code == 202
    assert relay.post(company, {"callHistory": 1}, event="no-such-event").status_code == 422
    assert eventually(lambda: len(receiver.receiver.on("/status/500")) == 3)
    assert eventually(
        lambda: (
            value(scrape(relay), "relay_drain_rows_total") - value(before, "relay_drain_rows_total")
            == 9
        )
    )
    after = scrape(relay)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("relay_deliveries_total", outcome="success") == 3
    assert moved("relay_deliveries_total", outcome="failed") == 3  # 410
    assert moved("relay_deliveries_total", outcome="retry") == 3  # 500
    assert moved("relay_retries_scheduled_total") == 3
    assert moved("relay_delivery_seconds_count") == 9
    assert moved("relay_intake_responses_total", code="202") == 3
    assert moved("relay_intake_responses_total", code="422") == 1
    assert moved("relay_drain_batches_total") >= 1
    assert moved("relay_db_transactions_total") == moved("relay_drain_batches_total")
    assert moved("relay_drain_seconds_count") >= 1
    # The three retries wait in the inbox; the log rows are all in PostgreSQL.
    assert value(after, "relay_spool_items", queue="inbox") == 3
    assert value(after, "relay_spool_items", queue="outbox") == 0
    assert value(after, "relay_spool_oldest_pending_seconds") == 0
    assert value(after, "relay_spool_bytes") > 0
    assert value(after, "relay_spool_max_bytes") == relay.service.settings.spool_max_bytes


def test_readyz_flips_during_a_database_outage_and_back(
    start_relay: Callable[..., InProcessRelay],
    pg_engine: Engine,
    pg_cluster: PgCluster,
    receiver: RunningReceiver,
) -> None:
    company = add_company(pg_engine)
    add_webhook(pg_engine, company, f"{receiver.url}/ok")
    relay = start_relay(ready_max_drain_failure_seconds=1)
    assert ready(relay).status_code == 200
    before = scrape(relay)
    pg_cluster.stop(mode="immediate")
    try:
        for n in range(3):  # accepted and delivered; their log rows wait in the spool
            assert relay.post(company, event_id=f"outage-{n}").status_code == 202
        assert eventually(lambda: ready(relay).status_code == 503, timeout=30)
        problems = ready(relay).json()["problems"]
        assert any("execution-log drain has failed" in p for p in problems), problems
        during = scrape(relay)
        assert value(during, "relay_drain_failing_since_timestamp_seconds") > 0
        assert value(during, "relay_spool_items", queue="outbox") == 3
        assert value(during, "relay_spool_oldest_pending_seconds") > 0
        failures = value(during, "relay_db_errors_total", error_class="transient")
        assert failures > value(before, "relay_db_errors_total", error_class="transient")
    finally:
        pg_cluster.start()
    assert eventually(lambda: ready(relay).status_code == 200, timeout=60)
    after = scrape(relay)
    assert value(after, "relay_drain_failing_since_timestamp_seconds") == 0
    last_worked = "relay_drain_last_success_timestamp_seconds"
    assert value(after, last_worked) > value(during, last_worked)  # it worked again
    assert value(after, "relay_spool_items", queue="outbox") == 0


def test_readyz_says_when_the_spool_is_full(
    start_relay: Callable[..., InProcessRelay], pg_engine: Engine
) -> None:
    relay = start_relay(spool_max_bytes=4096)
    answer = ready(relay)
    assert answer.status_code == 503
    assert any("the spool is full" in p for p in answer.json()["problems"])


def test_every_listed_series_is_exported_before_anything_happened(
    start_relay: Callable[..., InProcessRelay],
) -> None:
    samples = scrape(start_relay())
    assert [series for series in LISTED_SERIES if series not in samples] == []


def test_a_fresh_relay_serve_exports_every_listed_series_at_zero(
    relay_processes: Callable[..., RelayProcess],
) -> None:
    """The three-process relay: at once (its children may still be starting, with no metric
    files yet), and once both children count into their files."""
    relay = relay_processes().start()
    try:
        at_start = scrape(relay)
        assert {s: at_start.get(s) for s in LISTED_SERIES} == dict.fromkeys(LISTED_SERIES, 0.0)
        assert eventually(
            lambda: all(
                line in relay.log_since_start() for line in ("dispatcher running", "drain running")
            ),
            timeout=60,
        ), relay.log_since_start()
        page = metrics_page(relay)
        counted = scrape(relay)
        assert {s: counted.get(s) for s in LISTED_SERIES} == dict.fromkeys(LISTED_SERIES, 0.0)
        # the drain's idle cycles work: the one timestamp that is not 0 once it runs
        last_worked = ("relay_drain_last_success_timestamp_seconds", ())
        assert at_start.get(last_worked) is not None
        assert eventually(lambda: (scrape(relay).get(last_worked) or 0) > 0)
        types = [line for line in page.splitlines() if line.startswith("# TYPE")]
        assert len(types) == len(set(types)), "a family is exported twice"
    finally:
        relay.stop_cleanly()
