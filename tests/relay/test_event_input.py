"""`parse_event`: every body a client can send ends in an `EventInput` or an `InputError`
naming the field (400 for bytes that are not storable JSON, 422 for a wrong shape)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.errors import InputError
from relay.inbox.deliveries import EventInput
from relay.intake.body import MAX_EVENT_LENGTH, MAX_ID_LENGTH, parse_event
from tests.support.relay_data import sample_event

COMPANY = "6f1c2b1e-8a0b-4b0e-9a0e-3d1b2c4f5a60"
EVENT = "call-history-was-created"


def body(**fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"company_id": COMPANY, "event": EVENT, "data": sample_event()}
    document.update(fields)
    return document


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def raw_with(data: str, extra: str = "") -> str:
    """A body whose `data` is the JSON text `data`, written by hand (escapes kept as typed)."""
    return f'{{"company_id": "{COMPANY}", "event": "e", "data": {data}{extra}}}'


def refused(raw: bytes) -> InputError:
    with pytest.raises(InputError) as caught:
        parse_event(raw)
    return caught.value


def assert_names_field(error: InputError, status: int, field: str) -> None:
    assert error.status == status
    assert error.field == field
    answer = error.as_json()
    assert answer["field"] == field
    assert answer["error"].startswith(f"{field}: ")
    assert str(error).startswith(f"{field}: ")


# -- valid bodies -------------------------------------------------------------------------------


def test_a_valid_body_without_id() -> None:
    event = parse_event(encode(body()))
    assert event == EventInput(
        company_id=uuid.UUID(COMPANY), event=EVENT, data=sample_event(), id=None
    )


def test_a_valid_body_with_a_caller_id() -> None:
    event = parse_event(encode(body(id="evt-2026-11-24-0001")))
    assert event.id == "evt-2026-11-24-0001"
    assert event.company_id == uuid.UUID(COMPANY)


def test_an_explicit_null_id_is_no_id() -> None:
    assert parse_event(encode(body(id=None))).id is None


def test_limits_are_inclusive() -> None:
    event = parse_event(encode(body(id="i" * MAX_ID_LENGTH, event="e" * MAX_EVENT_LENGTH)))
    assert event.id is not None and len(event.id) == MAX_ID_LENGTH
    assert len(event.event) == MAX_EVENT_LENGTH


def test_uppercase_and_braced_uuids_are_the_same_company() -> None:
    upper = parse_event(encode(body(company_id=COMPANY.upper())))
    braced = parse_event(encode(body(company_id="{" + COMPANY + "}")))
    assert upper.company_id == braced.company_id == uuid.UUID(COMPANY)


def test_empty_data_object_and_unknown_extra_fields_are_accepted() -> None:
    event = parse_event(encode(body(data={}, extra="ignored")))
    assert event.data == {}


@pytest.mark.parametrize(
    "number", [2**63 - 1, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30, -(10**40)]
)
def test_integers_of_any_size_are_read_exactly(number: int) -> None:
    event = parse_event(encode(body(data={"n": number, "list": [number]})))
    assert event.data == {"n": number, "list": [number]}
    assert type(event.data["n"]) is int


def test_long_digit_runs_in_text_and_floats_read_as_written() -> None:
    data = {"ref": "1234567890123456789012345", "x": 0.1, "big": 1.5e308, "tiny": 5e-324}
    assert parse_event(encode(body(data=data))).data == data


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul() -> None:
    event = parse_event(raw_with(r'{"path": "C:\\u0000"}').encode())
    assert event.data == {"path": "C:\\u0000"}


def test_non_ascii_text_and_escaped_non_bmp_characters_are_fine() -> None:
    data = {"name": "Conceição", "emoji": "\U0001f4de"}
    assert parse_event(json.dumps(body(data=data)).encode()).data == data  # \ud83d\udcde pair
    assert parse_event(json.dumps(body(data=data), ensure_ascii=False).encode()).data == data


def test_a_utf8_bom_is_a_400_not_an_exception() -> None:
    error = refused(b"\xef\xbb\xbf" + encode(body()))
    assert_names_field(error, 400, "body")


# -- bytes that are not (storable) JSON: 400 ----------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"{",
        b'{"company_id": ',
        b"{'company_id': 'x'}",
        b'{"a": 1,}',
        b"nul",
        b'{"a": NaNa}',
        b'{"a": 1} trailing',
    ],
    ids=repr,
)
def test_malformed_json_is_400(raw: bytes) -> None:
    error = refused(raw)
    assert_names_field(error, 400, "body")
    assert "JSON" in error.message


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe{}", b'{"data": "\xc3"}', b'{"data": "\xed\xa0\x80"}', b"\x80"],
    ids=repr,
)
def test_invalid_utf8_is_400(raw: bytes) -> None:
    error = refused(raw)
    assert_names_field(error, 400, "body")
    assert "UTF-8" in error.message


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b'{"a":' * 100_000,
        b'{"company_id": "x", "event": "e", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["open-arrays", "open-objects", "closed-arrays-in-data"],
)
def test_deeply_nested_json_is_400_never_an_exception(raw: bytes) -> None:
    error = refused(raw)
    assert_names_field(error, 400, "body")
    assert "nested too deeply" in error.message


def test_an_integer_with_too_many_digits_is_400() -> None:
    error = refused(b'{"company_id": "x", "event": "e", "data": {"n": ' + b"9" * 5000 + b"}}")
    assert_names_field(error, 400, "body")


@pytest.mark.parametrize(
    "text",
    [
        raw_with(r'{"x": "a\u0000b"}'),
        raw_with(r'{"a\u0000": 1}'),
        raw_with(r'{"x": ["\u0000"]}'),
    ],
    ids=["in-value", "in-key", "in-array"],
)
def test_a_nul_character_in_the_data_is_400(text: str) -> None:
    error = refused(text.encode())
    assert_names_field(error, 400, "body")
    assert "NUL" in error.message


@pytest.mark.parametrize(
    "text",
    [
        raw_with(r'{"x": "\ud800"}'),
        raw_with(r'{"x": "a\udfffb"}'),
        raw_with(r'{"\udc00": 1}'),
        raw_with(r'{"x": [{"y": "\ud83d"}]}'),
        raw_with("{}", extra=r', "id": "\ud800"'),
    ],
    ids=["high", "low", "in-key", "nested", "in-id"],
)
def test_a_lone_surrogate_is_400(text: str) -> None:
    error = refused(text.encode())
    assert_names_field(error, 400, "body")
    assert "surrogate" in error.message


def test_storability_is_checked_before_the_shape() -> None:
    # a NUL outside `data` (in an otherwise invalid document) still makes it a 400
    error = refused(b'["\\u0000"]')
    assert_names_field(error, 400, "body")


# -- well-formed JSON of the wrong shape: 422 naming the field ----------------------------------


@pytest.mark.parametrize("document", [[], [body()], "text", 1, 1.5, None, True])
def test_a_top_level_that_is_not_an_object_is_422(document: object) -> None:
    error = refused(encode(document))
    assert_names_field(error, 422, "body")
    assert "object" in error.message


@pytest.mark.parametrize("field", ["company_id", "event", "data"])
def test_each_required_field_missing_is_422(field: str) -> None:
    document = body()
    del document[field]
    error = refused(encode(document))
    assert_names_field(error, 422, field)
    assert "required" in error.message


@pytest.mark.parametrize("field", ["company_id", "event"])
def test_a_null_required_field_is_422(field: str) -> None:
    error = refused(encode(body(**{field: None})))
    assert_names_field(error, 422, field)


def test_a_null_data_is_422() -> None:
    error = refused(encode(body(data=None)))
    assert_names_field(error, 422, "data")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("company_id", 123),
        ("company_id", True),
        ("company_id", [COMPANY]),
        ("company_id", {"id": COMPANY}),
        ("event", 5),
        ("event", False),
        ("event", ["call-history-was-created"]),
        ("event", {}),
        ("data", []),
        ("data", "text"),
        ("data", 1),
        ("data", True),
        ("id", 42),
        ("id", True),
        ("id", ["a"]),
        ("id", {}),
    ],
    ids=repr,
)
def test_a_mistyped_field_is_422(field: str, value: object) -> None:
    error = refused(encode(body(**{field: value})))
    assert_names_field(error, 422, field)


@pytest.mark.parametrize(
    "value",
    ["", "not-a-uuid", "6f1c2b1e-8a0b-4b0e-9a0e", COMPANY + "0", "g" * 32, "x" * 10_000],
    ids=repr,
)
def test_an_invalid_uuid_is_422(value: str) -> None:
    error = refused(encode(body(company_id=value)))
    assert_names_field(error, 422, "company_id")
    assert len(error.message) < 200  # a huge value is not echoed whole


@pytest.mark.parametrize(
    ("field", "value"), [("event", ""), ("event", "   "), ("id", ""), ("id", " ")]
)
def test_an_empty_or_blank_string_is_422(field: str, value: str) -> None:
    error = refused(encode(body(**{field: value})))
    assert_names_field(error, 422, field)
    assert "non-empty" in error.message


@pytest.mark.parametrize(
    ("field", "limit"), [("event", MAX_EVENT_LENGTH), ("id", MAX_ID_LENGTH)], ids=["event", "id"]
)
def test_a_too_long_string_is_422(field: str, limit: int) -> None:
    error = refused(encode(body(**{field: "x" * (limit + 1)})))
    assert_names_field(error, 422, field)
    assert str(limit) in error.message


def test_the_first_bad_field_is_named_in_a_stable_order() -> None:
    error = refused(encode({"event": 1, "data": 2}))
    assert_names_field(error, 422, "company_id")
    error = refused(encode({"company_id": COMPANY, "data": 2}))
    assert_names_field(error, 422, "event")
    error = refused(encode({"company_id": COMPANY, "event": "e", "id": 3}))
    assert_names_field(error, 422, "data")


# -- numbers JSON does not have -----------------------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_in_the_data_are_400(number: str) -> None:
    error = refused(raw_with(f'{{"x": {number}}}').encode())
    assert_names_field(error, 400, "body")


def test_postgresql_jsonb_refuses_what_python_calls_nan(pg_engine: Engine) -> None:
    """Why intake refuses them: Python would print NaN, and the execution log could not
    store the body it was given."""
    stored_as = json.dumps({"x": float("nan")})
    assert stored_as == '{"x": NaN}'
    with (
        pytest.raises(sa.exc.DataError, match="invalid input syntax for type json"),
        pg_engine.connect() as conn,
    ):
        conn.execute(sa.text("SELECT CAST(:doc AS jsonb)"), {"doc": stored_as})
