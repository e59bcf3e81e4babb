"""Measurement: the console's pages on the million-row log of `bench/search.py`, as a person
gets them: over HTTP from a real `relay serve` (its three processes) on that database,
signed in, each page timed from the request to its last byte.

Each page runs in turn with the API route that answers the same question (which goes first
rotates), on the same choice of number or company: a page is that route's answer plus the
company names and webhook URLs of its rows, the filter choices and the HTML, so the ratio
tells what the page adds to the data. The target is the issue's: under 200 ms.

- history by phone: `/console/executions?phone=N` against `/api/v1/executions?phone=N`;
- a company's history: `?company_id=C` against the same API search;
- company page: `/console/companies/C` (the company, its webhooks, its last 10 executions)
  against `/api/v1/executions?company_id=C&limit=10`;
- an execution: `/console/executions/ID` (the row, its body and its message's timeline)
  against `/api/v1/executions/ID`;
- dashboard: `/console` (today, 7 days and 24 hours of counts, the spool and the drain)
  against `/api/v1/stats` of the last 7 days (one of its three questions).
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from bench.latencies import WARM_UP, Latencies, Shape, in_turn
from bench.service_stage import relay_process
from relay.accounts import store
from relay.console.sessions import COOKIE
from relay.db.engine import make_engine

TARGET_MS = 200.0
WEBHOOKS_SQL = """INSERT INTO webhooks (id, company_id, url, name)
SELECT DISTINCT ON (webhook_id) webhook_id, company_id,
    'https://crm.example.com/hooks/' || company_id, 'CRM'
FROM unnest(%s::uuid[], %s::uuid[]) AS w(webhook_id, company_id) ON CONFLICT DO NOTHING"""
# a log row on a page: a line of a history, or an attempt of an execution's timeline
SHOWN_ROW = re.compile(r'<a href="/console/executions/[0-9a-f-]+">|<li data-attempt=')
SETTINGS = {"RELAY_PLATFORM": "false", "RELAY_LOG_LEVEL": "WARNING"}


def run_console_pages(
    database_url: str,
    conninfo: str,
    workdir: Path,
    webhooks: Sequence[tuple[str, str]],
    phones: Sequence[str],
    runs: int,
) -> tuple[Shape, ...]:
    """Time each page against its API route on a relay serving the filled log; `webhooks`
    are the log's (webhook id, company id) pairs, registered so the pages can name them."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(WEBHOOKS_SQL, ([w for w, _ in webhooks], [c for _, c in webhooks]))
    password = secrets.token_urlsafe(16)
    token = _admin(database_url, password)
    with relay_process(workdir, database_url, SETTINGS) as relay:
        asyncio.run(relay.wait_ready())
        with (
            httpx.Client(base_url=relay.url, timeout=30) as console,
            httpx.Client(
                base_url=relay.url, timeout=30, headers={"authorization": f"Bearer {token}"}
            ) as api,
        ):
            _sign_in(console, password)
            return _shapes(console, api, webhooks, phones, runs)


def _admin(database_url: str, password: str) -> str:
    """An admin user (for the console) and their API token (for the baselines)."""
    engine = make_engine(database_url)
    try:
        now = datetime.now(UTC)
        store.add_user(engine, "bench", password, role="admin", companies_allowed=None, now=now)
        _row, token = store.create_token(engine, "bench", scope="admin", company_id=None, now=now)
    finally:
        engine.dispose()
    return token


def _sign_in(console: httpx.Client, password: str) -> None:
    answer = console.post("/console/login", data={"username": "bench", "password": password})
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in refused: {answer.status_code} {answer.text[:200]}")
    # the cookie is Secure, which httpx keeps off plain http: sent by hand, as a browser would
    console.headers["cookie"] = f"{COOKIE}={answer.cookies[COOKIE]}"


def _shapes(
    console: httpx.Client,
    api: httpx.Client,
    webhooks: Sequence[tuple[str, str]],
    phones: Sequence[str],
    runs: int,
) -> tuple[Shape, ...]:
    rng = random.Random(17)
    companies = sorted({c for _, c in webhooks})
    count = runs + WARM_UP
    some_phones = [rng.choice(phones) for _ in range(count)]
    some_companies = [rng.choice(companies) for _ in range(count)]
    executions = _execution_ids(api, some_phones)
    week_ago = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pages: list[tuple[str, str, list[tuple[str, str]]]] = [
        (
            "history by phone",
            "the API's search by phone",
            [
                (f"/console/executions?phone={p}", f"/api/v1/executions?phone={p}")
                for p in some_phones
            ],
        ),
        (
            "a company's history",
            "the API's search by company",
            [
                (f"/console/executions?company_id={c}", f"/api/v1/executions?company_id={c}")
                for c in some_companies
            ],
        ),
        (
            "company page",
            "the API's last 10 executions of the company",
            [
                (f"/console/companies/{c}", f"/api/v1/executions?company_id={c}&limit=10")
                for c in some_companies
            ],
        ),
        (
            "an execution with its timeline",
            "the API's execution",
            [(f"/console/executions/{e}", f"/api/v1/executions/{e}") for e in executions],
        ),
        (
            "dashboard",
            "the API's stats of 7 days",
            [("/console", f"/api/v1/stats?since={week_ago}")] * count,
        ),
    ]
    return tuple(
        _timed(title, baseline, console, api, pairs[:count]) for title, baseline, pairs in pages
    )


def _execution_ids(api: httpx.Client, phones: Sequence[str]) -> list[str]:
    """An execution of each number (its first page's newest row)."""
    found = []
    for phone in phones:
        items = _ok(api.get("/api/v1/executions", params={"phone": phone})).json()["items"]
        found.append(items[0]["execution_id"])
    return found


def _timed(
    title: str,
    baseline: str,
    console: httpx.Client,
    api: httpx.Client,
    pairs: Sequence[tuple[str, str]],
) -> Shape:
    def shown_rows(answer: httpx.Response) -> int:
        return len(SHOWN_ROW.findall(answer.text))

    timed = [
        in_turn(
            [lambda p=page: _ok(console.get(p)), lambda r=route: _ok(api.get(r))],  # type: ignore[misc]
            turn,
            shown_rows,
        )
        for turn, (page, route) in enumerate(pairs)
    ]
    measured = timed[WARM_UP:]
    return Shape(
        f"console: {title}",
        baseline,
        Latencies.of([page[0] for page, _ in measured]),
        Latencies.of([route[0] for _, route in measured]),
        sum(page[1] for page, _ in measured),
    )


def _ok(answer: httpx.Response) -> httpx.Response:
    if answer.status_code != 200:
        raise RuntimeError(f"{answer.request.url}: {answer.status_code} {answer.text[:300]}")
    return answer
