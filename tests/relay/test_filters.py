"""The webhook filter engine: path parsing, operator semantics, validation messages.

Pure functions only, no database. `hypothesis` is not installed in the venv, so the property
tests at the end use a seeded `random.Random` generator of JSON values instead.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from relay.registry.filters import (
    MAX_VALUE_DEPTH,
    Filter,
    InvalidFilter,
    JsonValue,
    Operator,
    filters_to_json,
    json_equal,
    matches_all,
    parse_filter,
    parse_filters,
    parse_path,
)

SAMPLE_PATH = (
    Path(__file__).resolve().parents[3] / "shared" / "samples" / "call-history-was-created.json"
)

# One body exercising every shape: nested objects, arrays of scalars/objects/arrays, nulls.
DATA: dict[str, Any] = {
    "s": "hello world",
    "empty": "",
    "n": 5,
    "f": 2.5,
    "one": 1,
    "one_float": 1.0,
    "t": True,
    "false": False,
    "z": 0,
    "null": None,
    "ts": "2026-11-24T14:03:11-03:00",
    "obj": {"k": "v", "inner": {"deep": [10, 20]}, "nothing": None},
    "tags": ["a", "b", 1, True, None, {"id": 1}, [1, 2]],
    "items": [{"sku": "X1", "qty": 2}, {"sku": "Y2", "qty": 0}],
    "grid": [[{"c": "r0c0"}], [{"c": "r1c0"}, {"c": "r1c1"}]],
    "a": {"b": [0, 1, [{"c": "found"}]]},
    "emptylist": [],
    "emptyobj": {},
}


def passes(field_path: str, operator: str, value: JsonValue, data: object = DATA) -> bool:
    """Go through the same door as saved filters do: decoded JSON, validated, then matched."""
    return parse_filter({"field_path": field_path, "operator": operator, "value": value}).matches(
        data
    )


# ---------------------------------------------------------------------------------------------
# Paths


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("a", ("a",)),
        ("callHistory.campaign.id", ("callHistory", "campaign", "id")),
        ("items[0].sku", ("items", 0, "sku")),
        ("a.b[2][0].c", ("a", "b", 2, 0, "c")),
        ("[0].id", (0, "id")),
        ("[0][10]", (0, 10)),
        ("x[123456789]", ("x", 123456789)),
        ("with space.and-dash_and:colon", ("with space", "and-dash_and:colon")),
        ("0.1", ("0", "1")),  # digits after a dot are object keys, never indexes
        ("ünï.cødé", ("ünï", "cødé")),
    ],
)
def test_parse_path(path: str, steps: tuple[str | int, ...]) -> None:
    assert parse_path(path) == steps


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "field_path: must not be empty"),
        ("a..b", "field_path: invalid path 'a..b': empty key at offset 2"),
        (".a", "field_path: invalid path '.a': empty key at offset 0"),
        ("a.", "field_path: invalid path 'a.': trailing '.'"),
        (".", "field_path: invalid path '.': empty key at offset 0"),
        ("a.[0]", "field_path: invalid path 'a.[0]': empty key at offset 2"),
        (
            "a[x]",
            "field_path: invalid path 'a[x]': "
            "index [x] is not a non-negative integer without leading zeros",
        ),
        (
            "a[]",
            "field_path: invalid path 'a[]': "
            "index [] is not a non-negative integer without leading zeros",
        ),
        (
            "a[01]",
            "field_path: invalid path 'a[01]': "
            "index [01] is not a non-negative integer without leading zeros",
        ),
        (
            "a[ 1]",
            "field_path: invalid path 'a[ 1]': "
            "index [ 1] is not a non-negative integer without leading zeros",
        ),
        (
            "a[\u0661]",  # ARABIC-INDIC DIGIT ONE: str.isdigit() would accept it
            "field_path: invalid path 'a[\u0661]': "
            "index [\u0661] is not a non-negative integer without leading zeros",
        ),
        ("a[-1]", "field_path: invalid path 'a[-1]': negative index [-1] (indexes count from 0)"),
        ("a[0", "field_path: invalid path 'a[0': unclosed '[' at offset 1"),
        ("a[0].b[", "field_path: invalid path 'a[0].b[': unclosed '[' at offset 6"),
        ("a]", "field_path: invalid path 'a]': unexpected ']' at offset 1 (expected '.' or '[')"),
        ("]", "field_path: invalid path ']': unexpected ']' at offset 0"),
        (
            "a[0]]",
            "field_path: invalid path 'a[0]]': unexpected ']' at offset 4 (expected '.' or '[')",
        ),
        (
            "a[0]b",
            "field_path: invalid path 'a[0]b': unexpected 'b' at offset 4 (expected '.' or '[')",
        ),
        (
            "a[[0]]",
            "field_path: invalid path 'a[[0]]': "
            "index [[0] is not a non-negative integer without leading zeros",
        ),
    ],
)
def test_parse_path_rejects(path: str, message: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_path(path)
    assert str(caught.value) == message
    assert caught.value.location == "field_path"


# ---------------------------------------------------------------------------------------------
# Operators: (field_path, value, expected) against DATA


EQUALS_CASES = [
    ("s", "hello world", True),
    ("s", "hello", False),
    ("n", 5, True),
    ("n", 5.0, True),  # JSON has one number type
    ("one_float", 1, True),
    ("n", "5", False),  # no coercion
    ("one", "1", False),
    ("one", True, False),  # Python's True == 1 must not leak through
    ("t", 1, False),
    ("t", True, True),
    ("false", 0, False),
    ("z", False, False),
    ("false", False, True),
    ("null", None, True),  # a present null is a value
    ("obj.nothing", None, True),
    ("z", None, False),
    ("empty", None, False),
    ("missing", None, False),  # ...but a missing field is not null
    ("obj.missing", None, False),
    ("obj", {"k": "v", "inner": {"deep": [10, 20]}, "nothing": None}, True),
    ("obj", {"nothing": None, "inner": {"deep": [10.0, 20]}, "k": "v"}, True),  # key order
    ("obj", {"k": "v"}, False),  # not a subset match
    ("obj.inner.deep", [10, 20], True),
    ("obj.inner.deep", [20, 10], False),  # arrays are ordered
    ("obj.inner.deep", [10], False),
    ("tags[3]", True, True),
    ("tags[3]", 1, False),
    ("tags[2]", True, False),
    ("tags[5]", {"id": 1}, True),
    ("tags[5]", {"id": True}, False),  # deep comparison is JSON equality too
    ("tags[6]", [1, 2], True),
    ("tags[6]", [True, 2], False),
    ("items[1].sku", "Y2", True),
    ("items[2].sku", "Y2", False),  # index out of range
    ("a.b[2][0].c", "found", True),
    ("grid[1][1].c", "r1c1", True),
    ("grid[0][1].c", "r1c1", False),
    ("emptylist", [], True),
    ("emptyobj", {}, True),
    ("emptylist", {}, False),
    ("s.length", 11, False),  # stepping into a string is missing
    ("n.x", None, False),  # stepping into a number is missing
    ("null.x", None, False),  # stepping into null is missing
    ("items.0", {"sku": "X1", "qty": 2}, False),  # a key step into an array is missing
    ("obj[0]", "v", False),  # an index step into an object is missing
]


@pytest.mark.parametrize(("path", "value", "expected"), EQUALS_CASES)
def test_equals(path: str, value: JsonValue, expected: bool) -> None:
    assert passes(path, "equals", value) is expected


@pytest.mark.parametrize(("path", "value", "expected"), EQUALS_CASES)
def test_not_equals_is_the_negation_of_equals(path: str, value: JsonValue, expected: bool) -> None:
    assert passes(path, "not_equals", value) is not expected


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("missing", 1, True),  # a missing field certainly does not equal 1
        ("missing", None, True),
        ("items[9].sku", "X1", True),
        ("null", None, False),
        ("one", True, True),
        ("n", "5", True),
    ],
)
def test_not_equals(path: str, value: JsonValue, expected: bool) -> None:
    assert passes(path, "not_equals", value) is expected


@pytest.mark.parametrize(
    ("operator", "path", "value", "expected"),
    [
        ("greater_than", "n", 4, True),
        ("greater_than", "n", 5, False),
        ("greater_than", "n", 5.0, False),
        ("greater_than", "n", 4.99, True),
        ("greater_than", "f", 2, True),
        ("greater_than", "z", -1, True),
        ("greater_than", "n", 10**30, False),
        ("less_than", "n", 10**30, True),
        ("less_than", "n", 6, True),
        ("less_than", "n", 5, False),
        ("less_than", "f", 2.6, True),
        ("less_than", "items[1].qty", 1, True),
        # strings compare lexicographically, so same-format timestamps compare as times
        ("greater_than", "ts", "2026-11-24T00:00:00-03:00", True),
        ("greater_than", "ts", "2026-11-24T14:03:11-03:00", False),
        ("less_than", "ts", "2026-11-25T00:00:00-03:00", True),
        ("less_than", "ts", "2025-12-31T23:59:59-03:00", False),
        ("greater_than", "s", "hello", True),
        ("less_than", "s", "i", True),
        ("greater_than", "s", "", True),
        ("less_than", "empty", "a", True),
        ("less_than", "s", "Z", False),  # code-point order: lowercase sorts after uppercase
        # mismatched types never pass, in either direction
        ("greater_than", "n", "4", False),
        ("less_than", "n", "6", False),
        ("greater_than", "s", 0, False),
        ("less_than", "s", 10**9, False),
        ("greater_than", "t", 0, False),  # booleans have no order
        ("less_than", "false", 1, False),
        ("greater_than", "null", 0, False),
        ("less_than", "null", "z", False),
        ("greater_than", "tags", 0, False),
        ("less_than", "obj", "z", False),
        ("greater_than", "emptylist", -1, False),
        # missing fields fail
        ("greater_than", "missing", -(10**9), False),
        ("less_than", "missing", 10**9, False),
        ("less_than", "items[5].qty", 10, False),
        ("greater_than", "n.x", 0, False),
    ],
)
def test_greater_than_less_than(operator: str, path: str, value: JsonValue, expected: bool) -> None:
    assert passes(path, operator, value) is expected


CONTAINS_CASES = [
    # string field: substring of a string value, no coercion
    ("s", "lo wo", True),
    ("s", "hello world", True),
    ("s", "", True),
    ("s", "HELLO", False),  # case-sensitive
    ("s", "xyz", False),
    ("ts", "2026-11", True),
    ("ts", 2026, False),  # a number is not a substring
    ("s", None, False),
    ("s", True, False),
    ("empty", "", True),
    # array field: an element JSON-equal to the value
    ("tags", "a", True),
    ("tags", "c", False),
    ("tags", 1, True),
    ("tags", 1.0, True),
    ("tags", True, True),
    ("tags", False, False),  # not 0 / not 1
    ("tags", "1", False),
    ("tags", None, True),
    ("obj.inner.deep", 10, True),
    ("obj.inner.deep", 15, False),
    ("obj.inner.deep", True, False),
    ("emptylist", None, False),
    ("items", "X1", False),  # not a deep search
    # object field: has the string as a key
    ("obj", "k", True),
    ("obj", "nothing", True),  # the key exists even though its value is null
    ("obj", "v", False),  # values are not searched
    ("obj", 1, False),
    ("emptyobj", "", False),
    # other types: never contain anything
    ("n", 5, False),
    ("one", 1, False),
    ("t", True, False),
    ("null", None, False),
    # missing
    ("missing", "a", False),
    ("missing", None, False),
    ("tags[99]", "a", False),
    ("s.x", "h", False),
]


@pytest.mark.parametrize(("path", "value", "expected"), CONTAINS_CASES)
def test_contains(path: str, value: JsonValue, expected: bool) -> None:
    assert passes(path, "contains", value) is expected


@pytest.mark.parametrize(("path", "value", "expected"), CONTAINS_CASES)
def test_not_contains_is_the_negation_of_contains(
    path: str, value: JsonValue, expected: bool
) -> None:
    assert passes(path, "not_contains", value) is not expected


@pytest.mark.parametrize(
    ("operator", "present", "missing"),
    [
        ("equals", True, False),
        ("not_equals", False, True),
        ("greater_than", True, False),
        ("less_than", False, False),
        ("contains", True, False),
        ("not_contains", False, True),
    ],
)
def test_missing_field_table(operator: str, present: bool, missing: bool) -> None:
    """The table in the module docstring: what each operator does when the path is absent."""
    ordered = operator in ("greater_than", "less_than")
    value: JsonValue = 0 if ordered else "zz"
    data = {"x": {"y": [{"z": 1 if ordered else "zz"}]}}
    assert passes("x.y[0].z", operator, value, data) is present
    for absent in ("x.y[0].w", "x.y[1].z", "x.w[0].z", "x.y.z", "x.y[0].z.w", "x[0]", "q"):
        assert passes(absent, operator, value, data) is missing, absent


def test_null_is_present_for_every_operator() -> None:
    data = {"x": None}
    assert passes("x", "equals", None, data)
    assert not passes("x", "not_equals", None, data)
    assert passes("x", "not_equals", 0, data)
    assert not passes("x", "greater_than", 0, data)
    assert not passes("x", "less_than", 0, data)
    assert not passes("x", "contains", None, data)
    assert passes("x", "not_contains", None, data)
    # a step *through* null is missing
    assert not passes("x.y", "equals", None, data)
    assert passes("x.y", "not_equals", None, data)


@pytest.mark.parametrize(
    "data",
    [[{"id": 7}, {"id": 8}], "text", 42, 4.2, True, None, [], {}],
    ids=repr,
)
def test_top_level_data_of_any_json_type(data: JsonValue) -> None:
    is_list = isinstance(data, list) and bool(data)
    assert passes("[1].id", "equals", 8, data) is is_list
    assert passes("[0]", "contains", "id", data) is is_list
    assert passes("id", "not_equals", 7, data) is True  # no top-level key anywhere here
    assert passes("id", "equals", 7, data) is False


# ---------------------------------------------------------------------------------------------
# The real sample event


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE_PATH.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(
    ("path", "operator", "value", "expected"),
    [
        ("callHistory.campaign.id", "equals", 201074, True),
        ("callHistory.campaign.id", "equals", "201074", False),
        ("callHistory.campaign.id", "not_equals", 201075, True),
        ("callHistory.company.name", "contains", "Acme", True),
        ("callHistory.status", "equals", 7, True),
        ("callHistory.recorded", "equals", True, True),
        ("callHistory.recorded", "equals", 1, False),
        ("callHistory.qualification.conversion", "equals", True, True),
        ("callHistory.qualification.behavior", "equals", True, False),
        ("callHistory.amd_status", "equals", None, True),
        ("callHistory.amd_status", "not_equals", None, False),
        ("webhookEvent", "equals", None, True),
        ("webhookEvent.id", "equals", None, False),
        ("callHistory.speaking_time", "greater_than", 60, True),
        ("callHistory.speaking_time", "greater_than", "60", False),
        ("callHistory.billed_time", "less_than", 240, False),
        ("hangupCause.sip", "less_than", 300, True),
        ("callHistory.call_date", "greater_than", "2026-11-24T00:00:00-03:00", True),
        ("callHistory.created_at", "less_than", "2026-11-24T14:06:00-03:00", False),
        ("callHistory.mailing_data.uf", "equals", "AL", True),
        ("callHistory.mailing_data.data.valor", "equals", 1520.40, False),  # stored as text
        ("callHistory.mailing_data.data.valor", "equals", "1520.40", True),
        ("callHistory.mailing_data.data", "contains", "contrato", True),
        ("callHistory.mailing_data.data", "not_contains", "cpf", True),
        ("callHistory.number", "contains", "55829", True),
        ("callHistory.number", "contains", 55829, False),
        ("callHistory.route.caller_id", "not_contains", "5511", False),
        ("callHistory.agent", "equals", {"name": "Maria Souza", "id": 88213}, True),
        ("callHistory.tags", "not_contains", "vip", True),  # missing
        ("callHistory.tags", "contains", "vip", False),
        ("callHistory.campaign[0]", "equals", 201074, False),
        ("callHistory.list.id", "equals", 9921.0, True),
    ],
)
def test_sample_event(
    sample: dict[str, Any], path: str, operator: str, value: JsonValue, expected: bool
) -> None:
    assert passes(path, operator, value, sample) is expected


def test_sample_event_subscription(sample: dict[str, Any]) -> None:
    stored = json.dumps(
        [
            {"field_path": "callHistory.campaign.id", "operator": "equals", "value": 201074},
            {"field_path": "callHistory.qualification.conversion", "operator": "equals",
             "value": True},
            {"field_path": "callHistory.speaking_time", "operator": "greater_than", "value": 30},
            {"field_path": "callHistory.agent.name", "operator": "not_contains", "value": "Bot"},
            {"field_path": "hangupCause.id", "operator": "not_equals", "value": 17},
        ]
    )  # fmt: skip
    filters = parse_filters(json.loads(stored))
    assert matches_all(filters, sample)
    other_campaign = json.loads(json.dumps(sample))
    other_campaign["callHistory"]["campaign"]["id"] = 1
    assert not matches_all(filters, other_campaign)
    assert not matches_all(filters, {})
    assert not matches_all(filters, None)


def test_no_filters_match_everything(sample: dict[str, Any]) -> None:
    everything: tuple[object, ...] = (sample, {}, [], None, 0, "x")
    for data in everything:
        assert matches_all((), data)
        assert matches_all(parse_filters([]), data)


# ---------------------------------------------------------------------------------------------
# Validation when saving or loading


def valid(**overrides: object) -> dict[str, object]:
    item: dict[str, object] = {"field_path": "a.b", "operator": "equals", "value": 1}
    item.update(overrides)
    return item


UNKNOWN_OPERATOR = (
    "unknown operator {!r} (expected one of: "
    "equals, not_equals, greater_than, less_than, contains, not_contains)"
)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "filters: expected an array of filter objects, got null"),
        ({"field_path": "a"}, "filters: expected an array of filter objects, got object"),
        ("[]", "filters: expected an array of filter objects, got string"),
        (3, "filters: expected an array of filter objects, got number"),
        ((valid(),), "filters: expected an array of filter objects, got tuple"),
        ([valid(), "x"], "filters[1]: expected an object, got string"),
        ([None], "filters[0]: expected an object, got null"),
        ([[valid()]], "filters[0]: expected an object, got array"),
        ([valid(), valid(), True], "filters[2]: expected an object, got boolean"),
        (
            [{"fieldPath": "a", "operator": "equals", "value": 1}],
            "filters[0].fieldPath: unexpected key (allowed keys: field_path, operator, value)",
        ),
        (
            [valid(extra=1, another=2)],
            "filters[0].another: unexpected key (allowed keys: field_path, operator, value)",
        ),
        ([{"operator": "equals", "value": 1}], "filters[0].field_path: required key is missing"),
        ([{"field_path": "a", "value": 1}], "filters[0].operator: required key is missing"),
        ([{"field_path": "a", "operator": "equals"}], "filters[0].value: required key is missing"),
        ([{}], "filters[0].field_path: required key is missing"),
        ([valid(field_path=1)], "filters[0].field_path: expected a string, got number"),
        ([valid(field_path=None)], "filters[0].field_path: expected a string, got null"),
        ([valid(field_path=["a"])], "filters[0].field_path: expected a string, got array"),
        ([valid(field_path="")], "filters[0].field_path: must not be empty"),
        (
            [valid(), valid(field_path="a..b")],
            "filters[1].field_path: invalid path 'a..b': empty key at offset 2",
        ),
        (
            [valid(field_path="a[-1]")],
            "filters[0].field_path: invalid path 'a[-1]': "
            "negative index [-1] (indexes count from 0)",
        ),
        ([valid(), valid(operator="eq")], "filters[1].operator: " + UNKNOWN_OPERATOR.format("eq")),
        ([valid(operator="EQUALS")], "filters[0].operator: " + UNKNOWN_OPERATOR.format("EQUALS")),
        ([valid(operator="")], "filters[0].operator: " + UNKNOWN_OPERATOR.format("")),
        ([valid(operator=1)], "filters[0].operator: expected a string, got number"),
        ([valid(operator=None)], "filters[0].operator: expected a string, got null"),
        (
            [valid(operator="greater_than", value=True)],
            "filters[0].value: greater_than needs a number or a string, got boolean",
        ),
        (
            [valid(operator="less_than", value=None)],
            "filters[0].value: less_than needs a number or a string, got null",
        ),
        (
            [valid(operator="less_than", value=[1])],
            "filters[0].value: less_than needs a number or a string, got array",
        ),
        (
            [valid(operator="greater_than", value={"a": 1})],
            "filters[0].value: greater_than needs a number or a string, got object",
        ),
        (
            [valid(operator="contains", value={"id": 1})],
            "filters[0].value: contains needs a string, number, boolean or null, got object",
        ),
        (
            [valid(operator="not_contains", value=["a", "b"])],
            "filters[0].value: not_contains needs a string, number, boolean or null, got array",
        ),
        ([valid(value=float("nan"))], "filters[0].value: nan is not a valid JSON number"),
        (
            [valid(operator="less_than", value=float("inf"))],
            "filters[0].value: inf is not a valid JSON number",
        ),
        (
            [valid(value={"a": [1, {"b": float("-inf")}]})],
            "filters[0].value.a[1].b: -inf is not a valid JSON number",
        ),
        ([valid(value={1: "x"})], "filters[0].value: object key 1 is not a string"),
        ([valid(value=(1, 2))], "filters[0].value: tuple is not a JSON value"),
        ([valid(value=[{1, 2}])], "filters[0].value[0]: set is not a JSON value"),
    ],
)
def test_parse_filters_rejects(raw: object, message: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filters(raw)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
    assert message.startswith(caught.value.location + ": ")


def test_value_depth_is_bounded() -> None:
    deep: JsonValue = 1
    for _ in range(MAX_VALUE_DEPTH):
        deep = [deep]
    assert parse_filters([valid(value=deep)])[0].value == deep
    with pytest.raises(InvalidFilter, match=f"nested deeper than {MAX_VALUE_DEPTH} levels"):
        parse_filters([valid(value=[deep])])


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("equals", None),
        ("equals", {"a": [1, {"b": None}]}),
        ("not_equals", [1, "2", False]),
        ("greater_than", 0),
        ("greater_than", -1.5),
        ("less_than", "2026-01-01"),
        ("less_than", ""),
        ("contains", ""),
        ("contains", 0),
        ("contains", False),
        ("not_contains", None),
        ("not_contains", 10**40),
    ],
)
def test_parse_filters_accepts(operator: str, value: JsonValue) -> None:
    (parsed,) = parse_filters([valid(operator=operator, value=value)])
    assert parsed.operator is Operator(operator)
    assert json_equal(parsed.value, value)


def test_parse_filter_names_its_location() -> None:
    with pytest.raises(InvalidFilter, match=r"^--filter #2\.operator: unknown operator 'eq'"):
        parse_filter(valid(operator="eq"), where="--filter #2")
    with pytest.raises(InvalidFilter, match=r"^filter\.value: less_than needs"):
        parse_filter(valid(operator="less_than", value=False))
    with pytest.raises(InvalidFilter, match=r"^filter: expected an object, got array"):
        parse_filter([])


def test_constructing_a_filter_validates_it() -> None:
    with pytest.raises(InvalidFilter, match=r"^field_path: invalid path 'a\.': trailing '\.'$"):
        Filter("a.", Operator.EQUALS, 1)
    with pytest.raises(InvalidFilter, match=r"^operator: unknown operator 'eq'"):
        Filter("a", "eq", 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidFilter, match=r"^value: contains needs"):
        Filter("a", Operator.CONTAINS, [1])
    plain = Filter("a[1]", "contains", "x")  # type: ignore[arg-type]
    assert plain.operator is Operator.CONTAINS
    assert plain.steps == ("a", 1)


def test_filters_round_trip_through_stored_json() -> None:
    filters = parse_filters(
        [
            valid(),
            valid(field_path="items[0].sku", operator="contains", value="X"),
            valid(field_path="[2].t", operator="greater_than", value="2026-01-01T00:00:00Z"),
            valid(field_path="o", operator="not_equals", value={"k": [1, None, True]}),
        ]
    )
    stored = filters_to_json(filters)
    assert stored[1] == {"field_path": "items[0].sku", "operator": "contains", "value": "X"}
    assert all(type(item["operator"]) is str for item in stored)  # plain text, not the enum
    reloaded = parse_filters(json.loads(json.dumps(stored)))
    assert reloaded == filters
    assert filters_to_json(reloaded) == stored
    assert filters_to_json(()) == []


def test_filter_equality_and_hash_follow_json_semantics() -> None:
    one = Filter("a", Operator.EQUALS, 1)
    assert one == Filter("a", Operator.EQUALS, 1.0)
    assert hash(one) == hash(Filter("a", Operator.EQUALS, 1.0))
    assert one != Filter("a", Operator.EQUALS, True)
    assert one != Filter("a", Operator.EQUALS, "1")
    assert one != Filter("a", Operator.NOT_EQUALS, 1)
    assert one != Filter("b", Operator.EQUALS, 1)
    assert Filter("a", Operator.EQUALS, {"x": [1, 2]}) == Filter(
        "a", Operator.EQUALS, {"x": [1.0, 2]}
    )
    assert len({one, Filter("a", Operator.EQUALS, 1.0), Filter("a", Operator.EQUALS, [1])}) == 2
    assert one != "a"


def test_filters_do_not_share_the_callers_json() -> None:
    inner: list[JsonValue] = [1]
    (parsed,) = parse_filters([valid(value={"k": inner})])
    inner.append(2)
    assert parsed.value == {"k": [1]}
    stored = filters_to_json([parsed])
    stored_value = stored[0]["value"]
    assert isinstance(stored_value, dict)
    stored_inner = stored_value["k"]
    assert isinstance(stored_inner, list)
    stored_inner.append(3)
    assert parsed.value == {"k": [1]}
    with pytest.raises(AttributeError):
        parsed.value = 2  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# json_equal and robustness


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (1, 1.0, True),
        (0, -0.0, True),
        (True, 1, False),
        (False, 0, False),
        (True, True, True),
        (None, None, True),
        (None, False, False),
        ("", None, False),
        ([], {}, False),
        ([1, [2, {"a": None}]], [1.0, [2, {"a": None}]], True),
        ([1, [2, {"a": None}]], [1, [2, {"b": None}]], False),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        (2**53 + 1, float(2**53), False),  # exact, not via float rounding
        (float("nan"), float("nan"), False),
        ((1,), [1], False),  # not JSON
    ],
)
def test_json_equal(left: object, right: object, expected: bool) -> None:
    assert json_equal(left, right) is expected
    assert json_equal(right, left) is expected


def nested(depth: int, leaf: object) -> object:
    value = leaf
    for _ in range(depth):
        value = {"n": [value]}
    return value


def test_deeply_nested_data_never_hits_the_recursion_limit() -> None:
    depth = 50_000
    data = nested(depth, "bottom")
    path = ".".join(["n[0]"] * depth)
    assert passes(path, "equals", "bottom", data)
    assert passes(path, "contains", "bot", data)
    assert not passes(path + ".x", "equals", "bottom", data)
    assert json_equal(data, nested(depth, "bottom"))
    assert not json_equal(data, nested(depth, "other"))
    assert not passes("n", "equals", [{"n": [1]}], data)


def test_huge_data_is_fine() -> None:
    data = {"items": [*range(200_000), "needle"], "text": "x" * 1_000_000 + "needle"}
    assert passes("items", "contains", "needle", data)
    assert passes("items[200000]", "equals", "needle", data)
    assert passes("text", "contains", "needle", data)
    assert not passes("items", "equals", list(range(200_000)), data)


def test_non_json_python_values_do_not_raise() -> None:
    """The engine only expects JSON, but stray Python objects must still not crash delivery."""
    data = {"t": (1, 2), "s": {1, 2}, "b": b"bytes", "o": object(), "d": {1: "int key"}}
    for path in ("t", "s", "b", "o", "d", "t[0]", "d.1"):
        cases: list[tuple[str, JsonValue]] = [
            ("equals", 1),
            ("not_equals", 1),
            ("greater_than", 0),
            ("less_than", "z"),
            ("contains", 1),
            ("not_contains", "b"),
        ]
        for operator, value in cases:
            assert isinstance(passes(path, operator, value, data), bool)


# ---------------------------------------------------------------------------------------------
# Property tests (seeded random; hypothesis is not a dependency of this project)

KEYS = ["a", "b", "id", "0", ""]


def random_json(rng: random.Random, depth: int = 0) -> JsonValue:
    kind = rng.randrange(9 if depth < 4 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 2, 10**20])
    if kind == 3:
        return rng.choice([0.0, 1.0, -0.5, 2.5, 1e300])
    if kind in (4, 5, 6):
        return rng.choice(["", "a", "b", "ab", "1", "true", "2026-01-01"])
    if kind == 7:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS[:-1]): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def random_path(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randrange(1, 4)):
        part = rng.choice(KEYS[:-1])
        part += "".join(f"[{rng.randrange(3)}]" for _ in range(rng.randrange(3)))
        parts.append(part)
    return ".".join(parts) if rng.random() < 0.9 else "[0]" + ".".join(["", *parts])


def random_filter(rng: random.Random) -> Filter:
    while True:
        raw = {
            "field_path": random_path(rng),
            "operator": rng.choice(list(Operator)).value,
            "value": random_json(rng, depth=rng.randrange(5)),
        }
        try:
            return parse_filter(raw)
        except InvalidFilter:
            continue  # e.g. an array value for contains


def test_property_never_raises_and_negations_are_complements() -> None:
    rng = random.Random(20261124)
    for _ in range(3000):
        data = random_json(rng)
        f = random_filter(rng)
        result = f.matches(data)
        assert isinstance(result, bool)
        if f.operator in (Operator.EQUALS, Operator.CONTAINS):
            negated = (
                Operator.NOT_EQUALS if f.operator is Operator.EQUALS else Operator.NOT_CONTAINS
            )
            assert Filter(f.field_path, negated, f.value).matches(data) is not result
        if f.operator in (Operator.GREATER_THAN, Operator.LESS_THAN):
            other = (
                Operator.LESS_THAN if f.operator is Operator.GREATER_THAN else Operator.GREATER_THAN
            )
            assert not (result and Filter(f.field_path, other, f.value).matches(data))


def test_property_json_equal_agrees_with_a_json_round_trip() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        value = random_json(rng)
        same = json.loads(json.dumps(value))
        assert json_equal(value, same)
        assert Filter("x", Operator.EQUALS, value).matches({"x": same})
        other = random_json(rng)
        assert json_equal(value, other) == json_equal(other, value)
        assert json_equal(value, other) == (
            Filter("x", Operator.EQUALS, value) == Filter("x", Operator.EQUALS, other)
        )


def test_property_stored_filters_round_trip() -> None:
    rng = random.Random(99)
    filters = tuple(random_filter(rng) for _ in range(500))
    assert parse_filters(json.loads(json.dumps(filters_to_json(filters)))) == filters
