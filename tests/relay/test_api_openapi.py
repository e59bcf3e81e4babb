"""`GET /api/v1/openapi.json`: a valid OpenAPI 3.1 document that lists exactly the routes the
relay serves under /api/v1, and whose schemas describe the answers the routes really give."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from starlette.routing import Route

from relay.api.routing import PREFIX
from tests.relay.conftest import EVENT
from tests.support.api_fixtures import Api, MakeToken
from tests.support.relay_launcher import InProcessRelay

METHODS = {"get", "post", "patch", "delete", "put"}


@pytest.fixture
def relay(start_relay: Callable[..., InProcessRelay]) -> InProcessRelay:
    return start_relay()


@pytest.fixture
def document(relay: InProcessRelay) -> dict[str, Any]:
    response = Api(relay.url, None).get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    answer: dict[str, Any] = response.json()
    return answer


def served_routes(relay: InProcessRelay) -> set[tuple[str, str]]:
    """(method, path) of every route of the running app under /api/v1."""
    starlette = relay.service.app.fallback
    found = set()
    for route in starlette.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path.startswith(PREFIX):
            found |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    return found


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    prefix = document["servers"][0]["url"]
    return {
        (method.upper(), prefix + path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in METHODS
    }


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"] == "3.1.0"


def test_it_lists_every_route_served_and_no_other(
    relay: InProcessRelay, document: dict[str, Any]
) -> None:
    served = served_routes(relay)
    assert documented_routes(document) == served
    assert {
        ("POST", "/api/v1/companies"),
        ("GET", "/api/v1/companies/{company_id}"),
        ("POST", "/api/v1/companies/{company_id}/webhooks"),
        ("DELETE", "/api/v1/webhooks/{webhook_id}"),
        ("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret"),
        ("GET", "/api/v1/events"),
        ("POST", "/api/v1/events"),
        ("GET", "/api/v1/openapi.json"),
    } <= served


def test_every_operation_describes_its_parameters_body_and_errors(
    document: dict[str, Any],
) -> None:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert names == set(_template_names(path)), (method, path)
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), (method, path)
            if operation.get("security") != []:
                assert {"401", "403", "429"} <= set(responses), (method, path)
            if method in ("post", "patch") and "requestBody" in operation:
                assert "422" in responses and "415" in responses, (method, path)
            for code, answer in responses.items():
                if code.startswith("4"):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


def _template_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def test_real_answers_match_their_schemas(
    relay: InProcessRelay, make_token: MakeToken, document: dict[str, Any]
) -> None:
    """Each answer of a small session is valid against the schema its operation declares."""
    admin_api = Api(relay.url, make_token())
    company = admin_api.post("/companies", {"name": "Acme"})
    company_id = company.json()["id"]
    hook = admin_api.post(
        f"/companies/{company_id}/webhooks", {"url": "https://h.example.com/x", "events": [EVENT],
                                              "secret": True},
    )  # fmt: skip
    hook_id = hook.json()["id"]
    session = [
        ("post", "/companies", company),
        ("get", "/companies", admin_api.get("/companies")),
        ("get", "/companies/{company_id}", admin_api.get(f"/companies/{company_id}")),
        ("post", "/companies/{company_id}/webhooks", hook),
        ("get", "/companies/{company_id}/webhooks",
         admin_api.get(f"/companies/{company_id}/webhooks")),
        ("patch", "/webhooks/{webhook_id}", admin_api.patch(f"/webhooks/{hook_id}", {"name": "n"})),
        ("post", "/webhooks/{webhook_id}/rotate-secret",
         admin_api.post(f"/webhooks/{hook_id}/rotate-secret")),
        ("get", "/events", admin_api.get("/events")),
        ("get", "/companies/{company_id}", admin_api.get("/companies/nope")),
        ("delete", "/webhooks/{webhook_id}", admin_api.delete(f"/webhooks/{hook_id}")),
        ("delete", "/companies/{company_id}", admin_api.delete(f"/companies/{company_id}")),
    ]  # fmt: skip
    for method, path, response in session:
        declared = document["paths"][path][method]["responses"][str(response.status_code)]
        schema = declared["content"]["application/json"]["schema"]
        validator = Draft202012Validator({**schema, "components": document["components"]})
        errors = list(validator.iter_errors(response.json()))
        assert errors == [], (method, path, response.json())
