"""`/api/v1/dead-letters` and the console's dead-letters page over real HTTP: list with why,
retry (back in the queue, same id) and purge, each company's caller seeing only theirs, a
viewer and a form without its CSRF token refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from tests.relay.test_api_executions import new_company
from tests.relay.test_console import console_session
from tests.relay.test_intake_http import assert_json_error as assert_error
from tests.support.api_fixtures import Api, MakeToken
from tests.support.relay_launcher import InProcessRelay

StartRelay = Callable[..., InProcessRelay]
REFUSAL = "value too long for type character varying(20)"


def refused_rows(relay: InProcessRelay, *companies: uuid.UUID) -> list[str]:
    """One log row per company that the database refused: dead letters in the relay's spool."""
    outbox = relay.service.outbox
    ids = []
    for company in companies:
        receipt = outbox.append(str(company), b"{}")
        [record] = [r for r in outbox.fetch_oldest(100) if r.id == receipt.record_id]
        outbox.dead_letter(record, REFUSAL)
        ids.append(receipt.record_id)
    return ids


def test_list_retry_and_purge_each_company_seeing_its_own(
    start_relay: StartRelay, make_token: MakeToken
) -> None:
    relay = start_relay(drain_interval_seconds=3600)  # the retried row stays in the queue
    admin = Api(relay.url, make_token())
    acme, beta = (uuid.UUID(new_company(admin, name)) for name in ("Acme", "Beta"))
    first, second, theirs = refused_rows(relay, acme, acme, beta)
    limited = admin.as_token(make_token(companies=[acme]))
    reader = admin.as_token(make_token(role="viewer", scope="read"))

    listed = admin.get("/dead-letters").json()
    assert listed["total"] == 3
    assert [d["id"] for d in listed["items"]] == [first, second, theirs]
    assert listed["items"][0]["error"] == REFUSAL
    assert listed["items"][0]["company_id"] == str(acme)
    assert [d["id"] for d in limited.get("/dead-letters").json()["items"]] == [first, second]
    assert reader.get("/dead-letters").status_code == 200
    assert reader.post("/dead-letters/retry", {"all": True}).status_code == 403
    assert_error(limited.post("/dead-letters/purge", {"ids": [theirs]}), 404, "ids")
    assert_error(admin.post("/dead-letters/retry", {}), 422, "ids")
    assert_error(admin.post("/dead-letters/retry", {"ids": [first], "all": True}), 422, "ids")

    assert admin.post("/dead-letters/retry", {"ids": [first]}).json() == {"retried": 1}
    assert limited.post("/dead-letters/purge", {"all": True}).json() == {"purged": 1}

    assert [d["id"] for d in admin.get("/dead-letters").json()["items"]] == [theirs]
    assert first in [r.id for r in relay.service.outbox.fetch_oldest(100)]  # back, same id


def test_the_console_page_retries_and_purges_for_admins_only(
    start_relay: StartRelay, make_token: MakeToken
) -> None:
    relay = start_relay(drain_interval_seconds=3600)
    make_token(name="ana")
    make_token(name="victor", role="viewer", scope="read")
    kept, purged = refused_rows(relay, uuid.uuid4(), uuid.uuid4())
    admin, csrf = console_session(relay, "ana")
    viewer, viewer_csrf = console_session(relay, "victor")

    page = admin.get("/console/dead-letters").text
    assert page.count("data-dead-letter=") == 2 and REFUSAL in page
    viewer_page = viewer.get("/console/dead-letters").text
    assert REFUSAL in viewer_page and "<button" not in viewer_page.split("<main>")[1]
    form = {"csrf": viewer_csrf, "ids": kept}
    assert viewer.post("/console/dead-letters/retry", data=form).status_code == 403
    assert admin.post("/console/dead-letters/purge", data={"ids": purged}).status_code == 403

    done = admin.post("/console/dead-letters/purge", data={"csrf": csrf, "ids": purged})

    assert done.status_code == 200 and "1 purged" in done.text
    assert done.text.count("data-dead-letter=") == 1
    retried = admin.post("/console/dead-letters/retry", data={"csrf": csrf, "all": "true"})
    assert "1 back in the queue" in retried.text and "No dead letters." in retried.text
