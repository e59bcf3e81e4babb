"""`delivery_body`: the bytes every attempt of a delivery POSTs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from relay.errors import InputError
from relay.inbox.deliveries import delivery_body
from tests.support.relay_data import sample_event

COMPANY = uuid.UUID("1f0c6f5e-3c1a-4d7e-9a51-2b8c7d6e5f40")
ACCEPTED = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)


def python_json(data: object) -> str:
    return json.dumps(
        {
            "event_type": "call-history-was-created",
            "company_id": str(COMPANY),
            "timestamp": "2026-12-01T09:30:15.123456Z",
            "data": data,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


@pytest.mark.parametrize(
    "data",
    [
        sample_event(),
        {"name": "Conceição", "emoji": "\U0001f4de", "quote": 'a "b" \\ c', "tab": "\t\n"},
        {"nested": [{"a": [1, -2, True, False, None]}], "empty": {}, "list": []},
    ],
    ids=["sample", "text", "shapes"],
)
def test_the_body_is_compact_utf8_json_in_the_callers_key_order(data: object) -> None:
    body = delivery_body("call-history-was-created", COMPANY, ACCEPTED, data)
    assert body == python_json(data)


def test_floats_are_sent_as_the_same_numbers() -> None:
    data = {"small": 6.3282125e-05, "tiny": 1e-07, "big": 1e16, "neg": -0.5, "max": 1.7e308}
    body = delivery_body("call-history-was-created", COMPANY, ACCEPTED, data)
    sent = json.loads(body)["data"]
    assert sent == data
    assert all(type(sent[key]) is float for key in data)


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**30, -(10**40)])
def test_an_integer_beyond_64_bits_is_sent_with_every_digit(number: int) -> None:
    body = delivery_body("call-history-was-created", COMPANY, ACCEPTED, {"n": number})
    assert body == python_json({"n": number})
    assert json.loads(body)["data"]["n"] == number


def nested(depth: int) -> dict[str, object]:
    data: dict[str, object] = {"leaf": 1}
    for _ in range(depth):
        data = {"a": data}
    return data


def test_data_deeper_than_orjson_writes_is_written_by_python_json() -> None:
    data = nested(300)  # orjson writes at most 254 levels
    body = delivery_body("call-history-was-created", COMPANY, ACCEPTED, data)
    assert body == python_json(data)


def test_data_too_deep_to_write_again_is_a_400_naming_data() -> None:
    with pytest.raises(InputError) as refused:
        delivery_body("call-history-was-created", COMPANY, ACCEPTED, nested(5000))
    assert (refused.value.status, refused.value.field) == (400, "data")
    assert "nested too deeply" in refused.value.message
