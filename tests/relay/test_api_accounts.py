"""`/api/v1/users` and `/api/v1/tokens`, and the console's page for them, over real HTTP:
only an admin of every company manages accounts; a password is never answered; a token's
text is answered once and works at once; a disabled user's or revoked token stops working."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx

from tests.relay.test_api_executions import new_company
from tests.relay.test_console import console_session
from tests.relay.test_intake_http import assert_json_error as assert_error
from tests.support.api_fixtures import PASSWORD, Api, MakeToken
from tests.support.relay_launcher import InProcessRelay
from tests.support.waiting import eventually

StartRelay = Callable[..., InProcessRelay]


def test_an_admin_of_every_company_adds_users_and_tokens_and_takes_them_back(
    start_relay: StartRelay, make_token: MakeToken
) -> None:
    relay = start_relay()
    admin = Api(relay.url, make_token(name="ana"))
    acme = new_company(admin, "Acme")
    limited = admin.as_token(make_token(companies=[uuid.UUID(acme)]))
    reader = admin.as_token(make_token(role="viewer", scope="read"))

    added = admin.post(
        "/users", {"name": "carla", "password": PASSWORD, "role": "viewer", "companies": [acme]}
    )
    assert added.status_code == 201, added.text
    assert added.json()["companies"] == [acme] and "password" not in added.text
    assert_error(admin.post("/users", {"name": "carla", "password": PASSWORD}), 409, "name")
    assert_error(admin.post("/users", {"name": "dora", "password": "short"}), 422, "password")
    for other in (limited, reader):
        assert other.get("/users").status_code == 403
        assert other.post("/tokens", {"user": "carla"}).status_code == 403

    created = admin.post("/tokens", {"user": "carla", "scope": "read"})
    assert created.status_code == 201, created.text
    text = created.json()["token"]
    carla = Api(relay.url, text)
    assert carla.get(f"/companies/{acme}").status_code == 200
    assert all("token" not in t for t in admin.get("/tokens").json()["items"])
    assert_error(admin.post("/tokens", {"user": "carla", "scope": "admin"}), 422, "scope")

    revoked = admin.post(f"/tokens/{created.json()['id']}/revoke", {})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert eventually(lambda: carla.get(f"/companies/{acme}").status_code == 401, timeout=10)
    assert admin.post(f"/tokens/{created.json()['id']}/revoke", {}).status_code == 409

    edited = admin.patch("/users/carla", {"role": "admin", "companies": None, "disabled": True})
    assert edited.json() | {"created_at": None} == {
        "name": "carla",
        "role": "admin",
        "companies": None,
        "disabled": True,
        "created_at": None,
    }
    assert_error(admin.patch("/users/nobody", {"disabled": True}), 404, "name")


def test_the_console_page_adds_a_user_shows_a_token_once_and_revokes_it(
    start_relay: StartRelay, make_token: MakeToken
) -> None:
    relay = start_relay()
    make_token(name="ana")
    make_token(name="victor", role="viewer", scope="read")
    admin, csrf = console_session(relay, "ana")
    viewer, viewer_csrf = console_session(relay, "victor")

    assert viewer.get("/console/accounts").status_code == 403
    assert "Users and tokens" not in viewer.get("/console/executions").text
    refused = viewer.post("/console/users", data={"csrf": viewer_csrf, "name": "x"})
    assert refused.status_code == 403
    assert admin.post("/console/users", data={"name": "x", "password": PASSWORD}).status_code == 403

    user = {"csrf": csrf, "name": "carla", "password": PASSWORD, "role": "viewer"}
    assert admin.post("/console/users", data=user).status_code == 303
    short = admin.post("/console/users", data={**user, "name": "dora", "password": "short"})
    assert short.status_code == 422 and "(password)" in short.text
    page = admin.post("/console/tokens", data={"csrf": csrf, "user": "carla", "scope": "read"})
    shown = re.search(r'<pre class="secret">(rly_[^<]+)</pre>', page.text)
    assert page.status_code == 200 and shown is not None
    assert shown.group(1) not in admin.get("/console/accounts").text  # once
    carla = Api(relay.url, shown.group(1))
    assert carla.get("/companies").status_code == 200

    token_id = re.search(r'data-token="([^"]+)">\s*<td><code>' + shown.group(1)[:8], page.text)
    assert token_id is not None
    revoked = admin.post(f"/console/tokens/{token_id.group(1)}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 303
    assert eventually(lambda: carla.get("/companies").status_code == 401, timeout=10)
    disabled = admin.post("/console/users/carla/disable", data={"csrf": csrf})
    assert disabled.status_code == 303
    row = re.search(
        r'data-user="carla">.*?class="state">(\w+)<', admin.get("/console/accounts").text, re.S
    )
    assert row is not None and row.group(1) == "disabled"


def test_the_console_page_sets_a_users_companies_and_password(
    start_relay: StartRelay, make_token: MakeToken
) -> None:
    relay = start_relay()
    api = Api(relay.url, make_token(name="ana"))
    make_token(name="carla", role="viewer", scope="read")
    acme = new_company(api, "Acme")
    new_company(api, "Other")
    admin, csrf = console_session(relay, "ana")

    picked = admin.post("/console/users/carla/companies", data={"csrf": csrf, "companies": acme})
    assert picked.status_code == 303
    page = admin.get("/console/accounts").text
    assert re.search(r'data-user="carla">.*?class="wrap companies">Acme<', page, re.S)
    carla = next(u for u in api.get("/users").json()["items"] if u["name"] == "carla")
    assert carla["companies"] == [acme]
    every = admin.post("/console/users/carla/companies", data={"csrf": csrf})  # none picked
    assert every.status_code == 303
    carla = next(u for u in api.get("/users").json()["items"] if u["name"] == "carla")
    assert carla["companies"] is None

    new_password = "a much longer passphrase"
    short = admin.post("/console/users/carla/password", data={"csrf": csrf, "password": "short"})
    assert short.status_code == 422 and "(password)" in short.text
    changed = admin.post(
        "/console/users/carla/password", data={"csrf": csrf, "password": new_password}
    )
    assert changed.status_code == 303
    sign_in = httpx.Client(base_url=str(relay.url))
    old = sign_in.post("/console/login", data={"username": "carla", "password": PASSWORD})
    new = sign_in.post("/console/login", data={"username": "carla", "password": new_password})
    assert (old.status_code, new.status_code) == (401, 303)
