"""The web console in a real browser (Debian's chromium through Playwright) against a real
relay delivering to a real receiver, plus the server's refusals over plain HTTP: a form
without its CSRF token, a viewer's resend, a session past its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from freezegun import freeze_time
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import Engine

from relay.accounts.principal import Principal, Role, Scope
from relay.console.sessions import COOKIE, SessionStore
from relay.db.schema import platform_streams
from spool import utc_now
from tests.relay.conftest import EVENT, RunningReceiver
from tests.relay.test_api_executions import (
    NO_DRAIN,
    PHONE,
    PHONE_AS_TYPED,
    StartRelay,
    first_item,
    items,
    new_company,
    new_webhook,
    post_event,
)
from tests.support.api_fixtures import PASSWORD, Api, MakeToken
from tests.support.relay_data import sample_event
from tests.support.relay_launcher import InProcessRelay
from tests.support.waiting import eventually

CHROMIUM = Path("/usr/bin/chromium")
ON_REAL_TIME = ["apscheduler", "playwright", "greenlet"]
# `make screenshots` sets it: the browser test saves its pages there as PNGs
SCREENSHOTS = os.environ.get("RELAY_CONSOLE_SCREENSHOTS")


def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


def one_pending_delivery(
    start_relay: StartRelay, receiver: RunningReceiver, make_token: MakeToken
) -> tuple[InProcessRelay, dict[str, Any]]:
    """A relay that keeps its log rows in the spool, users ana (admin) and victor (viewer),
    and one event delivered to Acme's webhook: its (pending) log row."""
    relay = start_relay(**NO_DRAIN)
    api = Api(relay.url, make_token(name="ana"))
    make_token(name="victor", role="viewer", scope="read")
    acme = new_company(api, "Acme")
    new_webhook(api, acme, f"{receiver.url}/acme/ok")
    post_event(relay, acme)
    assert eventually(lambda: first_item(api, phone=PHONE) is not None)
    row = first_item(api, phone=PHONE)
    assert row is not None
    return relay, row


def sign_in(page: Page, relay: InProcessRelay, user: str) -> None:
    page.goto(f"{relay.url}/console/executions")
    expect(page).to_have_url(re.compile(r"/console/login$"))  # not signed in: sent to sign in
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Execution history")).to_be_visible()


def test_an_admin_finds_a_number_opens_the_row_and_resends_and_a_viewer_cannot(
    start_relay: StartRelay, receiver: RunningReceiver, make_token: MakeToken, browser: Browser
) -> None:
    relay, first = one_pending_delivery(start_relay, receiver, make_token)
    drained = relay.service.drain.scheduler.drainer.drain_once(force=True)
    assert drained.rows_written == 1  # the first call's row is in the database now
    post_event(relay, first["company_id"], event_id="second-call")  # the same number again
    assert eventually(lambda: relay.service.outbox.stats().pending == 1)  # its row: the spool

    # a browser in São Paulo: the time range is typed in its zone and sent as UTC
    context = browser.new_context(timezone_id="America/Sao_Paulo")
    page = context.new_page()
    sign_in(page, relay, "ana")
    page.fill("input[name=q]", PHONE_AS_TYPED)  # as a person types it
    page.press("input[name=q]", "Enter")
    expect(page).to_have_url(re.compile(r"q=%2B55"))  # the search is in the query string
    rows = page.locator("table.executions tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.locator(".badge.pending")).to_have_count(1)  # one still in the spool
    expect(rows.nth(0).locator(".badge.pending")).to_be_visible()  # newest first
    for row in (rows.nth(0), rows.nth(1)):
        expect(row.locator("td.company")).to_have_text("Acme")
        expect(row.locator("td.url")).to_have_text(f"{receiver.url}/acme/ok")
        expect(row.locator("td.duration")).to_have_text(re.compile(r"^\d+ ms$"))
    screenshot(page, "execution-history")
    time_cell = rows.first.locator("time")
    assert time_cell.get_attribute("title", timeout=1000).endswith("UTC")  # type: ignore[union-attr]

    local = datetime.now(ZoneInfo("America/Sao_Paulo"))
    page.select_option("select[name=company_id]", label="Acme")
    page.fill("input[name=since]", (local - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=until]", (local + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Search").click()
    # read as UTC, the window would end two hours ago and find nothing
    expect(page).to_have_url(re.compile(r"until=\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A00.000Z"))
    expect(page.locator("label", has_text="From")).to_contain_text("America/Sao_Paulo")
    expect(rows).to_have_count(2)
    until = datetime.fromisoformat(page.url.split("until=")[1].split("&")[0].replace("%3A", ":"))
    assert abs(until - (local + timedelta(hours=1))) < timedelta(minutes=1)

    rows.first.locator("time").click()
    expect(page.locator("pre.json")).to_contain_text(f'"number": "{PHONE}"')
    expect(page.locator("ol.attempts li")).to_have_count(1)
    detail_url = page.url
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
    page.get_by_role("button", name="Resend").click()  # a form without its CSRF token
    expect(page.get_by_text("missing or wrong CSRF token")).to_be_visible()
    assert len(receiver.receiver.requests) == 2  # refused: nothing was sent again
    page.goto(detail_url)
    page.get_by_role("button", name="Resend").click()
    expect(page).to_have_url(re.compile(r"resent=1"))
    assert eventually(lambda: page.reload() and page.locator("ol.attempts li").count() == 2)
    expect(page.locator("ol.attempts li[data-attempt='2']")).to_contain_text("success")
    assert len(receiver.receiver.requests) == 3  # two calls, and the resend

    screenshot(page, "execution-detail")
    detail_url = page.url.split("?")[0]
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("svg.chart rect.ok")).to_have_count(24)
    expect(page.locator(".drain .health")).to_contain_text("Working")
    screenshot(page, "dashboard")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.goto(detail_url)
    expect(page).to_have_url(re.compile(r"/console/login$"))  # the session ended

    viewer = browser.new_page()
    sign_in(viewer, relay, "victor")
    viewer.goto(detail_url)
    expect(viewer.locator("pre.json")).to_be_visible()
    expect(viewer.get_by_role("button", name="Resend")).to_have_count(0)
    with server_clock_ahead(timedelta(minutes=59)):
        viewer.reload()
        expect(viewer.locator("pre.json")).to_be_visible()  # not yet
    with server_clock_ahead(timedelta(minutes=60, seconds=1)):
        viewer.reload()
        expect(viewer).to_have_url(re.compile(r"/console/login$"))  # the session expired
    viewer.close()
    context.close()


@contextlib.contextmanager
def server_clock_ahead(ahead: timedelta) -> Iterator[None]:
    """The in-process relay's clock (the test's own, through freezegun) `ahead` of now and
    ticking; the event loops and the drain's scheduler keep real time, so only what reads
    the wall clock (session lifetimes, caches) sees the jump."""
    with (
        loops_on_real_time(),
        freeze_time(utc_now() + ahead, tick=True, real_asyncio=True, ignore=ON_REAL_TIME),
    ):
        yield


@contextlib.contextmanager
def loops_on_real_time() -> Iterator[None]:
    """asyncio loops read the real monotonic clock from before freezegun starts.

    freezegun's `real_asyncio` points the loops' clock back at the real one only after it
    has faked `time.monotonic` and scanned every module, tens of milliseconds later. A timer
    the relay's server thread set in that window (uvicorn checks its stop flag every 0.1 s)
    fell due in 56 years: the server never saw the flag, and each stop waited out its 30 s
    join. freezegun saves and restores whatever `time` it finds, so this one stays in place
    until the end. The real clock is held in a local: freezegun replaces every module-level
    name bound to it."""
    loop = asyncio.new_event_loop()
    loop_class = type(loop)
    loop.close()
    original, real_monotonic = loop_class.time, time.monotonic
    loop_class.time = lambda self: real_monotonic()  # type: ignore[method-assign]
    try:
        yield
    finally:
        loop_class.time = original  # type: ignore[method-assign]


def test_on_a_phone_an_admin_switches_a_webhook_off_with_the_keyboard(
    start_relay: StartRelay, receiver: RunningReceiver, make_token: MakeToken, browser: Browser
) -> None:
    relay, row = one_pending_delivery(start_relay, receiver, make_token)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(page, relay, "ana")
    page.get_by_role("link", name="Companies").click()
    page.get_by_role("link", name="Acme").click()
    expect(page.get_by_role("heading", name=re.compile("Acme"))).to_be_visible()
    screenshot(page, "company")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # the webhook table scrolls in its own box, not the page

    switch = page.get_by_role("button", name="Switch off")
    switch.focus()
    page.keyboard.press("Enter")

    expect(page.locator("table.webhooks td.state")).to_have_text("disabled")
    expect(page.get_by_role("button", name="Switch on")).to_be_visible()
    assert page.url.endswith(f"/console/companies/{row['company_id']}")
    page.close()


def console_session(relay: InProcessRelay, user: str) -> tuple[httpx.Client, str]:
    """A client signed in as `user` and its CSRF token. The cookie is Secure, which httpx
    (unlike a browser on 127.0.0.1) keeps off plain http, so it is sent by hand."""
    client = httpx.Client(base_url=str(relay.url), follow_redirects=False)
    answer = client.post("/console/login", data={"username": user, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert all(flag in cookie for flag in ("Secure", "HttpOnly", "SameSite=lax"))
    client.headers["cookie"] = f"{COOKIE}={answer.cookies[COOKIE]}"
    form = client.get("/console/executions").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    return client, csrf.group(1)


def test_forms_without_the_csrf_token_and_a_viewers_resend_are_refused(
    start_relay: StartRelay, receiver: RunningReceiver, make_token: MakeToken
) -> None:
    relay, row = one_pending_delivery(start_relay, receiver, make_token)
    resend = f"/console/messages/{row['message_id']}/resend"

    admin, csrf = console_session(relay, "ana")
    assert admin.post(resend, data={}).status_code == 403
    assert admin.post(resend, data={"csrf": "forged"}).status_code == 403
    assert admin.post("/console/logout", data={}).status_code == 403
    viewer, viewer_csrf = console_session(relay, "victor")
    refused = viewer.post(resend, data={"csrf": viewer_csrf})
    assert refused.status_code == 403 and "viewers cannot resend" in refused.text
    assert len(receiver.receiver.requests) == 1  # nothing was sent again
    assert admin.post(resend, data={"csrf": csrf}).status_code == 303
    assert eventually(lambda: len(receiver.receiver.requests) == 2)


def test_a_shared_link_naming_the_phone_finds_the_row_and_shows_the_number_in_the_box(
    start_relay: StartRelay, receiver: RunningReceiver, make_token: MakeToken
) -> None:
    relay, row = one_pending_delivery(start_relay, receiver, make_token)
    admin, _csrf = console_session(relay, "ana")

    shared = admin.get("/console/executions", params={"phone": PHONE})
    other = admin.get("/console/executions", params={"phone": "5511000000000"})

    assert shared.status_code == 200
    assert f'name="q" type="search" value="{PHONE}"' in shared.text
    assert row["execution_id"] in shared.text
    assert other.status_code == 200 and row["execution_id"] not in other.text


def test_a_user_disabled_or_made_a_viewer_after_signing_in_is_held_to_it_within_seconds(
    start_relay: StartRelay, make_token: MakeToken
) -> None:
    relay = start_relay()
    api = Api(relay.url, make_token(name="ana"))
    make_token(name="victor", role="admin")
    make_token(name="vera", role="admin")
    victor, _ = console_session(relay, "victor")
    vera, vera_csrf = console_session(relay, "vera")
    assert victor.get("/console/executions").status_code == 200
    assert api.patch("/users/victor", {"disabled": True}).status_code == 200
    assert api.patch("/users/vera", {"role": "viewer"}).status_code == 200

    with server_clock_ahead(timedelta(seconds=3)):  # past the accounts' 2 s cache
        assert victor.get("/console/executions").headers["location"] == "/console/login"
        company = new_company(api, "Acme")
        refused = vera.post(f"/console/companies/{company}/webhooks/new", data={"csrf": vera_csrf})
        assert refused.status_code == 403 and "viewers cannot edit" in refused.text
        assert 'class="who">vera (viewer)' in vera.get("/console/executions").text


def test_failed_sign_ins_are_rate_limited_and_name_no_reason(
    start_relay: StartRelay, make_token: MakeToken
) -> None:
    relay = start_relay()
    make_token(name="ana")
    client = httpx.Client(base_url=str(relay.url))
    statuses = [
        client.post("/console/login", data={"username": "ana", "password": "wrong"}).status_code
        for _ in range(12)
    ]
    assert statuses[0] == 401 and statuses[-1] == 429


def test_a_session_ends_at_its_lifetime_and_not_before() -> None:
    now = [datetime(2026, 12, 3, 12, 0, tzinfo=UTC)]
    sessions = SessionStore(lambda: now[0], minutes=30)
    principal = Principal("ana", Role.ADMIN, Scope.ADMIN, None)
    session_id, session = sessions.open(principal)
    now[0] += timedelta(minutes=29, seconds=59)
    assert sessions.get(session_id) == session
    now[0] += timedelta(seconds=1)
    assert sessions.get(session_id) is None
    assert sessions.get(str(uuid.uuid4())) is None


def test_the_dashboard_counts_today_and_the_week_and_charts_the_hour(
    start_relay: StartRelay, receiver: RunningReceiver, make_token: MakeToken
) -> None:
    relay = start_relay()  # drains at once: the counts are the database's
    api = Api(relay.url, make_token(name="ana"))
    acme = new_company(api, "Acme")
    new_webhook(api, acme, f"{receiver.url}/acme/ok")
    new_webhook(api, acme, f"{receiver.url}/acme/status/500")
    subscribed = (uuid.UUID(acme), EVENT)
    snapshot = relay.service.registry
    assert eventually(lambda: len(snapshot.snapshot.subscriptions.get(subscribed, ())) == 2)
    assert relay.post(uuid.UUID(acme)).json()["deliveries"] == 2
    assert eventually(lambda: len([r for r in items(api, phone=PHONE) if not r["pending"]]) >= 2)

    admin, _csrf = console_session(relay, "ana")
    page = admin.get("/console")
    assert page.status_code == 200
    assert page.text.count('<strong class="posts">2</strong>') == 2  # today, and the week
    assert page.text.count('<span class="rate">50.0%</span>') == 2
    assert '<td class="ellipsis">Acme</td>' in page.text
    assert page.text.count('<rect class="ok"') == 24  # one bar per hour
    assert re.search(r"UTC: 2 \(1 failed\)</title>", page.text)
    assert '<strong class="dead-letters">0</strong>' in page.text
    assert '<p class="health success">Working: last cycle' in page.text
    drained = re.search(r'<strong class="drained">(\d+)</strong>', page.text)
    assert drained is not None and int(drained.group(1)) >= 2
    assert re.search(r'<strong class="pending">\d+</strong>', page.text)


def test_the_company_list_searches_by_name_and_status(
    start_relay: StartRelay, make_token: MakeToken
) -> None:
    relay = start_relay()
    api = Api(relay.url, make_token(name="ana"))
    new_company(api, "Acme Cobrancas")
    other = new_company(api, "Beta Telecom")
    assert api.patch(f"/companies/{other}", {"status": "disabled"}).status_code == 200
    admin, _csrf = console_session(relay, "ana")

    def names(**query: str) -> list[str]:
        page = admin.get("/console/companies", params=query)
        assert page.status_code == 200, page.text
        return re.findall(r'<a href="/console/companies/[^"]+">([^<]+)</a>', page.text)

    assert names() == ["Acme Cobrancas", "Beta Telecom"]
    assert names(q="acme") == ["Acme Cobrancas"]
    assert names(status="disabled") == ["Beta Telecom"]
    refused = admin.get("/console/companies", params={"status": "gone"})
    assert refused.status_code == 422 and "(status)" in refused.text


def test_the_company_list_shows_each_platform_stream(
    start_relay: StartRelay, make_token: MakeToken, pg_engine: Engine
) -> None:
    relay = start_relay()
    api = Api(relay.url, make_token(name="ana"))
    new_company(api, "Acme Cobrancas")
    streamed = api.post(
        "/companies", {"name": "Beta Telecom", "platform_token": "tok-console-1"}
    ).json()["id"]
    with pg_engine.begin() as conn:
        conn.execute(
            platform_streams.insert().values(
                company_id=uuid.UUID(streamed),
                state="refused",
                detail="invalid token",
                since=utc_now(),
                updated_at=utc_now(),
            )
        )
    admin, _csrf = console_session(relay, "ana")

    page = admin.get("/console/companies").text

    assert "tok-console-1" not in page
    rows = {
        name: row
        for row in re.findall(r"<tr>.*?</tr>", page, re.S)
        for name in ("Acme Cobrancas", "Beta Telecom")
        if f">{name}</a>" in row
    }
    assert '<td class="platform">-</td>' in rows["Acme Cobrancas"]
    shown = '<span class="stream refused" title="invalid token">refused: invalid token</span>'
    assert f"cluster1 · {shown}" in rows["Beta Telecom"]


def test_a_company_page_switches_rotates_and_deletes_its_webhooks_for_admins_only(
    start_relay: StartRelay, make_token: MakeToken, receiver: RunningReceiver
) -> None:
    relay = start_relay()
    api = Api(relay.url, make_token(name="ana"))
    make_token(name="victor", role="viewer", scope="read")
    company = new_company(api, "Acme")
    long_url = f"{receiver.url}/ok/" + "segment/" * 20
    hook = api.post(
        f"/companies/{company}/webhooks", {"url": long_url, "events": [EVENT], "name": "CRM"}
    ).json()["id"]
    admin, csrf = console_session(relay, "ana")
    viewer, viewer_csrf = console_session(relay, "victor")

    page = admin.get(f"/console/companies/{company}")
    assert page.status_code == 200, page.text
    assert f'title="{long_url}"' in page.text and ">enabled<" in page.text

    switched = admin.post(f"/console/webhooks/{hook}/disable", data={"csrf": csrf})
    assert switched.status_code == 303
    assert switched.headers["location"] == f"/console/companies/{company}"
    assert api.get(f"/webhooks/{hook}").json()["enabled"] is False
    assert ">disabled<" in admin.get(f"/console/companies/{company}").text
    assert admin.post(f"/console/webhooks/{hook}/enable", data={"csrf": csrf}).status_code == 303
    assert api.get(f"/webhooks/{hook}").json()["enabled"] is True

    rotated = admin.post(f"/console/webhooks/{hook}/rotate-secret", data={"csrf": csrf})
    secret = re.search(r'<pre class="secret">(whsec_[^<]+)</pre>', rotated.text)
    assert rotated.status_code == 200 and secret is not None
    assert api.get(f"/webhooks/{hook}").json()["signed"] is True
    assert secret.group(1) not in admin.get(f"/console/companies/{company}").text  # once

    viewer_page = viewer.get(f"/console/companies/{company}").text
    assert "Switch off" not in viewer_page and "rotate-secret" not in viewer_page
    for change in ("disable", "delete", "rotate-secret"):
        refused = viewer.post(f"/console/webhooks/{hook}/{change}", data={"csrf": viewer_csrf})
        assert refused.status_code == 403
    assert admin.post(f"/console/webhooks/{hook}/delete", data={}).status_code == 403  # no CSRF
    assert api.get(f"/webhooks/{hook}").json()["enabled"] is True

    deleted = admin.post(f"/console/webhooks/{hook}/delete", data={"csrf": csrf})

    assert deleted.status_code == 303
    assert api.get(f"/webhooks/{hook}").status_code == 404
    assert "No webhooks." in admin.get(f"/console/companies/{company}").text
    unknown = admin.get(f"/console/companies/{uuid.uuid4()}")
    assert unknown.status_code == 404


def test_a_company_page_shows_its_last_executions(
    start_relay: StartRelay, receiver: RunningReceiver, make_token: MakeToken
) -> None:
    relay, row = one_pending_delivery(start_relay, receiver, make_token)
    admin, _csrf = console_session(relay, "ana")

    page = admin.get(f"/console/companies/{row['company_id']}")

    assert page.status_code == 200, page.text
    assert re.findall(r'<a href="/console/executions/([^"]+)">', page.text) == [row["execution_id"]]
    assert '<span class="badge pending">pending</span>' in page.text  # still in the spool
    assert '<td class="ellipsis company">Acme</td>' in page.text
    assert f'<td class="more ellipsis url" title="{receiver.url}/acme/ok">' in page.text
    assert f'href="/console/executions?company_id={row["company_id"]}"' in page.text


def editor_fields(company: str, **values: str) -> dict[str, Any]:
    """The editor's form as a browser posts it: one filter row unless told otherwise."""
    return {
        "url": values.get("url", "https://hooks.example.com/crm"),
        "name": "CRM",
        "events": EVENT,
        "f_event_0": EVENT,
        "f_path_0": "callHistory.campaign.id",
        "f_op_0": values.get("op", "equals"),
        "f_value_0": values.get("value", "201074"),
        "sample": "",
        "action": values.get("action", "save"),
    }


def test_the_webhook_editor_checks_filters_on_the_sample_and_saves_what_the_api_accepts(
    start_relay: StartRelay, make_token: MakeToken
) -> None:
    relay = start_relay()
    api = Api(relay.url, make_token(name="ana"))
    make_token(name="victor", role="viewer", scope="read")
    company = new_company(api, "Acme")
    admin, csrf = console_session(relay, "ana")
    viewer, viewer_csrf = console_session(relay, "victor")
    new = f"/console/companies/{company}/webhooks/new"

    form = admin.get(new)
    assert form.status_code == 200 and 'list="sample-paths"' in form.text
    assert '<option value="callHistory.campaign.id">201074</option>' in form.text

    passes = admin.post(new, data={"csrf": csrf, **editor_fields(company, action="check")})
    fails = admin.post(
        new, data={"csrf": csrf, **editor_fields(company, action="check", value="999")}
    )
    assert "the sample passes every filter" in passes.text
    assert "the sample would not pass" in fails.text
    bad = admin.post(new, data={"csrf": csrf, **editor_fields(company, url="ftp://x/")})
    assert bad.status_code == 422 and "(url)" in bad.text and 'value="ftp://x/"' in bad.text
    wrong = admin.post(
        new, data={"csrf": csrf, **editor_fields(company, op="greater_than", value="[1]")}
    )
    assert wrong.status_code == 422 and "(filters)" in wrong.text
    assert viewer.get(new).status_code == 403
    assert viewer.post(new, data={"csrf": viewer_csrf, **editor_fields(company)}).status_code == 403
    assert admin.post(new, data=editor_fields(company)).status_code == 403  # no CSRF token
    assert api.get(f"/companies/{company}/webhooks").json()["items"] == []  # nothing saved

    saved = admin.post(new, data={"csrf": csrf, **editor_fields(company)})

    assert saved.status_code == 303
    [hook] = api.get(f"/companies/{company}/webhooks").json()["items"]
    assert hook["filters"] == {
        EVENT: [{"field_path": "callHistory.campaign.id", "operator": "equals", "value": 201074}]
    }
    edit = f"/console/webhooks/{hook['id']}/edit"
    assert 'value="callHistory.campaign.id"' in admin.get(edit).text
    edited = {**editor_fields(company, url="https://hooks.example.com/v2"), "f_path_0": ""}
    assert admin.post(edit, data={"csrf": csrf, **edited}).status_code == 303
    changed = api.get(f"/webhooks/{hook['id']}").json()
    assert changed["url"] == "https://hooks.example.com/v2"
    assert changed["filters"] == {EVENT: []}  # the emptied row removed the filter


def test_an_admin_builds_a_filter_from_the_sample_and_only_matching_calls_arrive(
    start_relay: StartRelay, receiver: RunningReceiver, make_token: MakeToken, browser: Browser
) -> None:
    relay = start_relay()
    api = Api(relay.url, make_token(name="ana"))
    company = new_company(api, "Acme")
    page = browser.new_page()
    sign_in(page, relay, "ana")
    page.goto(f"{relay.url}/console/companies/{company}")
    page.get_by_role("link", name="Add a webhook").click()

    page.fill("input[name=url]", f"{receiver.url}/crm/ok")
    page.check(f"input[name=events][value={EVENT}]")
    page.get_by_label("Field of filter 1").fill("callHistory.campaign.id")
    page.get_by_label("Value of filter 1").fill("201074")
    page.get_by_role("button", name="Check against the sample").click()
    expect(page.locator(".verdict.pass")).to_contain_text("the sample passes every filter")
    page.get_by_label("Value of filter 1").fill("999")  # the preview follows as one types
    expect(page.locator("#preview .verdict.fail")).to_contain_text("would not pass")
    page.get_by_label("Value of filter 1").fill("201074")
    expect(page.locator("#preview .verdict.pass")).to_contain_text("passes every filter")
    page.get_by_label("Value of filter 1").fill("999")
    page.get_by_role("button", name="Check against the sample").click()  # and without it
    expect(page.locator(".verdict.fail")).to_contain_text("would not pass")
    screenshot(page, "webhook-editor")
    page.get_by_label("Value of filter 1").fill("201074")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("table.webhooks td.state")).to_have_text("enabled")
    page.close()

    matching = sample_event()
    other = json.loads(json.dumps(matching))
    other["callHistory"]["campaign"]["id"] = 5
    subscribed = (uuid.UUID(company), EVENT)
    assert eventually(lambda: subscribed in relay.service.registry.snapshot.subscriptions)
    assert relay.post(uuid.UUID(company), other).json()["deliveries"] == 0
    assert relay.post(uuid.UUID(company), matching).json()["deliveries"] == 1
    assert eventually(lambda: len(receiver.receiver.on("/crm")) == 1)
    [post] = receiver.receiver.on("/crm")
    assert post.json()["data"]["callHistory"]["campaign"]["id"] == 201074
