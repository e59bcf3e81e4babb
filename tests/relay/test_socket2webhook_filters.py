"""socket2webhook's filters: our model of how its server evaluates them (checked against its
own JavaScript when node and its repository are on disk), and what converting them to ours
changes. Pure functions: no database."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from relay.registry.filters import Filter, Operator, matches_all
from relay.registry.socket2webhook_filters import (
    Outcome,
    convert_filters,
    js_number,
    js_string,
    normalize,
    socket2webhook_passes,
)
from tests.support.relay_data import sample_event
from tests.support.socket2webhook_db import their_file, their_git_dir

CALL = sample_event()


def one(path: str, operator: str, value: Any, **extra: Any) -> list[dict[str, Any]]:
    return [{"field_path": path, "operator": operator, "value": value, **extra}]


def at(path: str, value: Any) -> dict[str, Any]:
    """An event with `value` at the dotted `path` (keys only)."""
    event: Any = value
    for key in reversed(path.split(".")):
        event = {key: event}
    result: dict[str, Any] = event
    return result


# -- the model: what server.js does, case by case (read off its applyEventFilters) -------------

MODEL_CASES = [
    # (filters, event, delivered by socket2webhook)
    (one("agent.id", "equals", "105"), at("agent.id", 105), True),  # their own example
    (one("agent.id", "equals", "105"), at("agent.id", "0105"), True),
    (one("agent.id", "equals", 105), at("agent.id", "105"), True),
    (one("agent.id", "equals", "105"), at("agent.id", "105x"), False),
    (one("a.b", "equals", "null"), {"a": {}}, True),  # missing equals null-ish
    (one("a.b", "equals", "NULL"), at("a.b", None), True),
    (one("a.b", "equals", True), at("a.b", "TRUE"), True),
    (one("a.b", "equals", "AL"), at("a.b", "al"), False),  # equals is case-sensitive
    (one("a.b", "equals", [1]), at("a.b", [1]), False),  # arrays are never ===
    (one("a.b", "not_equals", 7), {"a": {}}, False),  # missing fails not_equals
    (one("a.b", "not_contains", "x"), {"a": {}}, False),
    (one("a.b", "not_equals", 7), at("a.b", "7"), False),
    (one("a.b", "greater_than", "60"), at("a.b", "61"), True),
    (one("a.b", "greater_than", 0), at("a.b", True), True),  # Number(true) is 1
    (one("a.b", "less_than", 1), at("a.b", None), True),  # Number(null) is 0
    (one("a.b", "greater_than", "2026-01-01"), at("a.b", "2026-02-01"), False),  # NaN
    (one("a.b", "contains", "acordo"), at("a.b", "Acordo fechado"), True),
    (one("a.b", "contains", "8298"), at("a.b", 5582988628425), True),
    (one("a.b", "contains", "vip"), at("a.b", ["VIP-gold", "x"]), True),
    (one("a.b", "contains", 0), at("a.b", "anything"), True),  # searches for ""
    (one("a.b", "contains", "object"), at("a.b", {"k": 1}), True),  # "[object Object]"
    (one("a.b", "starts_with", "x"), at("a.b", "xyz"), False),  # unknown operator
    (one("tags[0]", "equals", "vip"), {"tags": ["vip"]}, True),
    (one("tags.0", "equals", "vip"), {"tags": ["vip"]}, True),  # a digit step indexes
    (one("tags.length", "equals", 2), {"tags": [1, 2]}, True),
    (one("a[0][0]", "equals", 1), {"a": [[1]]}, False),  # not `key[n]`: a plain key
    (one("a.b.c", "equals", "null"), at("a.b", 0), True),  # a falsy step: missing
    ([None], {}, False),  # `.field_path` of null throws twice: not delivered
    (["text"], {}, False),
    ({"field_path": "a"}, {}, False),  # not an array: `.every` throws
    ([], {}, True),
    (None, {}, True),
]


@pytest.mark.parametrize(("filters", "event", "delivered"), MODEL_CASES)
def test_the_model_reads_filters_as_socket2webhook_does(
    filters: object, event: object, delivered: bool
) -> None:
    assert socket2webhook_passes(filters, event) is delivered


def test_the_model_normalises_and_converts_as_javascript_does() -> None:
    assert normalize(" 105 ") == 105 and normalize("1.") == 1 and normalize("1e3") == "1e3"
    assert normalize("TRUE") is True and normalize("Null") is None
    assert js_number("0x10") == 16 and js_number("") == 0 and js_number([]) == 0
    assert js_number([5]) == 5 and js_number("1_000") != js_number("1_000")  # NaN
    assert js_string(1e21) == "1e+21" and js_string(1e20) == "100000000000000000000"
    assert js_string(0.000001) == "0.000001" and js_string(1e-7) == "1e-7"
    assert js_string([1, None, "a"]) == "1,,a" and js_string({}) == "[object Object]"


def _their_filter_functions() -> str:
    """normalizeValue, applyEventFilters and getNestedValue from their server.js at HEAD."""
    source = their_file("server/server.js")
    functions = []
    for name in ("normalizeValue", "applyEventFilters", "getNestedValue"):
        found = re.search(rf"^function {name}\(.*?^}}\n", source, re.S | re.M)
        assert found, f"server.js has no top-level function {name}"
        functions.append(found.group(0))
    return "\n".join(functions)


def _cross_check_cases() -> list[tuple[object, object]]:
    values: list[object] = [
        None, True, False, 0, 1, 7, 7.5, -3, 105, "105", "0105", " 105 ", "105.0", "105.",
        "1e3", "0x10", "", " ", "x", "abc", "ABC", "Abc", "null", "NULL", "true", "TRUE",
        "false", "undefined", [], [105], ["105"], ["xabcy"], ["ABC", 1], [None], [[1]], {},
        {"abc": 1}, 5582988628425, "5582988628425", "82988", 1e21, 0.000001, "Infinity",
        "-0", [5], ["5"],
    ]  # fmt: skip
    operators = ["equals", "not_equals", "greater_than", "less_than", "contains"]
    operators += ["not_contains", "starts_with"]
    cases: list[tuple[object, object]] = []
    for operator in operators:
        for value in values:
            for field in [*values, "MISSING"]:
                event: object = {"a": {}} if field == "MISSING" else {"a": {"b": field}}
                cases.append((one("a.b", operator, value, description="d"), event))
    shapes = [{"a": {"b": [3, 4]}}, {"a": [9, 8]}, {"a": "xyz"}, {"a": {"0": 5, "b": {"0": 1}}}]
    shapes += [{"a": [[1, 2], [3]]}, {"a": {"": {"b": 1}}}, {"a": 0}, {"a": None}]
    for path in ["a", "a.b", "a.b[0]", "a.length", "a.0", "a[0][1]", "a..b", "a[01]"]:
        for event in shapes:
            for operator, value in [("equals", 3), ("equals", "null"), ("not_equals", 3)]:
                cases.append((one(path, operator, value), event))
            cases.append((one(path, "greater_than", 0), event))
    odd: list[object] = [None, [], {}, "abc", "", 0, 5, True, [None], ["abc"], [5]]
    odd += [[{"operator": "equals", "value": None}], [{"field_path": "a", "operator": "equals"}]]
    cases += [(filters, event) for filters in odd for event in ({"a": 1}, {})]
    return cases


@pytest.mark.skipif(
    shutil.which("node") is None or their_git_dir() is None,
    reason="needs node and socket2webhook's repository ($SOCKET2WEBHOOK_GIT_DIR)",
)
def test_the_model_agrees_with_their_javascript() -> None:
    """Their three functions, run by node on 15,000 (filters, event) pairs: the model gives
    the same answer for every one (an exception counts as not delivered, as their caller's
    catch does)."""
    cases = _cross_check_cases()
    harness = (
        _their_filter_functions()
        + """
        console.log = console.warn = console.error = () => {};
        const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
        const run = ([filters, event]) => {
            try { return applyEventFilters(event, filters); } catch (e) { return false; }
        };
        process.stdout.write(JSON.stringify(cases.map(run)));
    """
    )
    done = subprocess.run(
        ["node", "-e", harness],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    theirs = json.loads(done.stdout)
    disagree = [
        (filters, event, said)
        for (filters, event), said in zip(cases, theirs, strict=True)
        if socket2webhook_passes(filters, event) is not said
    ]
    assert len(cases) > 15_000
    assert disagree == []


# -- conversion -------------------------------------------------------------------------------


def converted(filters: object, sample: object = None) -> tuple[Outcome, list[dict[str, Any]]]:
    result = convert_filters(filters) if sample is None else convert_filters(filters, sample=sample)
    assert len(result.reports) == 1
    return result.reports[0].outcome, [f.to_json() for f in result.filters]


def test_a_number_saved_as_text_becomes_a_number_and_the_description_goes() -> None:
    outcome, ours = converted(one("agent.id", "equals", "105", description="Agente 105"))
    assert ours == [{"field_path": "agent.id", "operator": "equals", "value": 105}]
    assert outcome is Outcome.NARROWER  # the text "105" matched too


def test_a_sample_event_tells_a_text_field_from_a_number_field() -> None:
    _, ours = converted(one("callHistory.number", "equals", 5582988628425), CALL)
    assert ours[0]["value"] == "5582988628425"  # callHistory.number is text in the sample
    _, ours = converted(one("callHistory.campaign.id", "equals", "201074"), CALL)
    assert ours[0]["value"] == 201074
    assert matches_all([Filter(**f) for f in ours], CALL)


def test_not_equals_keeps_blocking_events_without_the_field() -> None:
    outcome, ours = converted(one("callHistory.campaign.id", "not_equals", 195452))
    assert ours == [
        {"field_path": "callHistory.campaign", "operator": "contains", "value": "id"},
        {"field_path": "callHistory.campaign.id", "operator": "not_equals", "value": 195452},
        {"field_path": "callHistory.campaign.id", "operator": "not_equals", "value": "195452"},
    ]
    assert outcome is Outcome.UNUSUAL  # only " 195452" and "0195452" pass where they did not
    outcome, _ = converted(one("ack", "not_equals", "read"))  # a top-level key has no parent
    assert outcome is Outcome.WIDER


@pytest.mark.parametrize(
    ("filters", "outcome"),
    [
        (one("callHistory.mailing_data.uf", "equals", "AL"), Outcome.EXACT),
        (one("message.ack", "not_equals", "read"), Outcome.EXACT),
        (one("callHistory.status", "equals", 7), Outcome.NARROWER),
        (one("callHistory.qualification.name", "contains", "acordo"), Outcome.UNUSUAL),
        (one("callHistory.speaking_time", "greater_than", "60"), Outcome.NARROWER),
        (one("callHistory.list.name", "not_contains", "teste"), Outcome.WIDER),
        (one("callHistory.phone_type", "starts_with", "mob"), Outcome.DROPPED),
        (one("callHistory.call_date", "greater_than", "2026-11-24"), Outcome.DROPPED),
        (one("callHistory.amd_status", "equals", "undefined"), Outcome.DROPPED),
        (one("items.0.sku", "equals", "A1"), Outcome.DROPPED),
        (one("a.b", "equals", {"k": 1}), Outcome.DROPPED),
        (one("a.b", "contains", 0), Outcome.DROPPED),
        ({"field_path": "a"}, Outcome.DROPPED),
        ([None], Outcome.DROPPED),
    ],
)
def test_each_filter_gets_the_outcome_its_semantics_call_for(
    filters: object, outcome: Outcome
) -> None:
    assert converted(filters)[0] is outcome


def test_no_filters_convert_to_none() -> None:
    stored: object
    for stored in (None, [], ""):
        result = convert_filters(stored)
        assert result.filters == () and result.reports == ()


FILTER_VALUES: list[object] = [
    7, "7", " 7", "07", "105", 60, "60", -3, "-3", 0.5, 1.5, "1.5", 0, "0", "", "-5", "1e3",
    5582988628425, "5582988628425", "AL", "acordo", "Acordo", "teste", "x y", True, "true",
    "TRUE", False, "false", None, "null", [1], {"k": 1},
]  # fmt: skip
FIELD_VALUES: list[object] = [
    None, True, False, 0, 1, -1, -4, -5, 7, 59, 60, 61, 105, 1000, 0.4, 1.5, 5582988628425, "",
    "7", "07", " 7 ", "7.0", "105", "0105", " 105", "59", "60", "61", "-3", "-4", "-5", "0.5",
    "1.5", "1e3", "5582988628425", "x5582988628425", "AL", "al", "Al", "acordo", "ACORDO",
    "Acordo fechado", "Teste", "lote teste", "x y", "X Y", "TRUE", "True", "true", "false",
    "null", "NULL", "undefined", [], [1], [7], ["7"], [[1]], ["acordo"], ["Acordo fechado"],
    ["teste"], {}, {"k": 1}, {"acordo": 1},
]  # fmt: skip
PARENTS: list[object] = [None, 5, "a", [], {}, {"b": None}, {"list": []}]


def _odd(value: object) -> bool:
    """What UNUSUAL may let through: objects, odd spellings of true/null/numbers."""
    if isinstance(value, dict):
        return True
    if not isinstance(value, str):
        return False
    if value in ("TRUE", "True", "NULL", "undefined") or value.strip() != value:
        return True
    return re.fullmatch(r"-?0[0-9]+\.?[0-9]*|-?[0-9]+\.0*", value) is not None


PATHS: list[tuple[str, list[str | int]]] = [
    ("a.b", ["a", "b"]),
    ("a.b.c", ["a", "b", "c"]),
    ("a.list[1]", ["a", "list", 1]),
    ("top", ["top"]),
]


def _events(steps: list[str | int], value: object) -> list[tuple[object, bool]]:
    """(event, odd): the event empty, its parent not an object, each field value in place."""
    events: list[tuple[object, bool]] = [({}, False)]
    events += [({"a": parent}, False) for parent in PARENTS]
    for leaf in [*FIELD_VALUES, value, [value], js_string(normalize(value))]:
        event: object = leaf
        for step in reversed(steps):
            event = [None] * step + [event] if isinstance(step, int) else {step: event}
        events.append((event, _odd(leaf)))
    return events


def test_what_each_outcome_promises_holds_beyond_the_probes() -> None:
    """On 130,000 events (every field value below at the path, the parent missing or not an
    object, the event empty): EXACT passes the same events, NARROWER never passes what
    socket2webhook blocked, UNUSUAL only odd values (" 7", "07", "TRUE", objects)."""
    broken = []
    for path, steps in PATHS:
        for operator, value in itertools.product([op.value for op in Operator], FILTER_VALUES):
            stored = one(path, operator, value)
            result = convert_filters(stored)
            outcome = result.reports[0].outcome
            for event, odd in _events(steps, value):
                theirs = socket2webhook_passes(stored, event)
                ours = matches_all(result.filters, event)
                allowed = {
                    Outcome.EXACT: ours == theirs,
                    Outcome.NARROWER: theirs or not ours,
                    Outcome.UNUSUAL: theirs or not ours or odd,
                    Outcome.WIDER: True,  # imported disabled
                    Outcome.DROPPED: True,
                }[outcome]
                if not allowed:
                    broken.append((stored, event, outcome.value, theirs, ours))
    assert broken == []
