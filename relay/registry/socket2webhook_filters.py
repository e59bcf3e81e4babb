"""socket2webhook's saved filters, converted to ours, and what the conversion changes.

socket2webhook (the Node service users switch from) stores each subscription's filters in
`webhook_events.filters` as a JSON array of `{"field_path", "operator", "value",
"description"}`, with the same six operator names as ours; its console saves numbers typed in a
text box as text (`"105"`). Its server evaluates them differently from `relay.registry.filters`:

* Every value, the field's and the filter's, is first *normalised*: a text that spells
  `null`, `undefined`, `true` or `false` (any case) becomes that value, and a text of decimal
  digits (`-?digits[.digits]`, spaces around allowed) becomes a number. So `equals "105"`
  matches the number 105 and the text `"105"` and `"0105"`; ours compares JSON values exactly.
* A missing field fails every operator (ours: `not_equals` and `not_contains` pass), except
  that `equals` a null-like value (`null`, `"null"`, `"undefined"`) passes.
* `greater_than` / `less_than` compare JavaScript `Number()`s: text that parses as a number
  counts, `true`/`null`/`""` are 1/0/0, and a value that is not a number blocks every event
  (no date comparisons); ours compares numbers with numbers and text with text.
* `contains` searches the field turned into text, case-insensitively (numbers too: 5582988628425
  contains "8298"); on an array, inside each element; ours is case-sensitive, on text only, and
  on arrays tests whole-element equality. A falsy value (`0`, `false`, `""`) matches any field.
* An unknown operator, an array/object compared with `equals`, or a `null` entry in the
  array blocks every event.
* Paths are split on `.`; a step is a key or `key[n]`. A step of digits also indexes arrays
  and `length` reads an array's length.

`convert_filters` maps each of their filters to the closest filters of ours (a `not_equals`
gains an existence test on the parent object, `{"field_path": "callHistory", "operator":
"contains", "value": "status"}`, to keep blocking events without the field; it is exact
unless the parent is an array or a text holding the key's name), then checks the
result against `socket2webhook_passes` (a model of their evaluation, tested against their
JavaScript) on a set of probe events around the filter's value: the field missing, null,
booleans, the number, the number as text, other cases of the text, arrays, ... The
difference, if any, decides the outcome (see `Outcome`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final

from relay.registry.filters import Filter, InvalidFilter, JsonValue, Operator, Step, matches_all


class _Undefined:
    """JavaScript's `undefined`: what reading an absent key gives (distinct from null)."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED: Final = _Undefined()
JsValue = object  # a decoded JSON value, or UNDEFINED

# ECMAScript's WhiteSpace and LineTerminator: what String.prototype.trim removes.
_JS_SPACE: Final = "\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
_DIGITS_TEXT: Final = re.compile(r"-?[0-9]+\.?[0-9]*")  # what normalizeValue turns into a number
_DECIMAL: Final = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_RADIX: Final = {"x": 16, "o": 8, "b": 2}
_KEY_INDEX: Final = re.compile(r"([A-Za-z0-9_]+)\[([0-9]+)\]")  # their `^(\w+)\[(\d+)\]$`
_ARRAY_INDEX: Final = re.compile(r"0|[1-9][0-9]*")
_ALL_DIGITS: Final = re.compile(r"[0-9]+")
_RADIX_DIGITS: Final = {
    16: re.compile(r"[0-9a-fA-F]+"),
    8: re.compile(r"[0-7]+"),
    2: re.compile(r"[01]+"),
}
_OPERATORS: Final = frozenset(op.value for op in Operator)


# -- their evaluation, modelled ----------------------------------------------------------------


def socket2webhook_passes(filters: object, data: object) -> bool:
    """Whether socket2webhook's server (server.js `applyEventFilters`) delivers an event with
    body `data` to a subscription whose stored `filters` are these. A model, for deciding what
    a conversion changes; tests/relay/test_import_socket2webhook.py runs it against theirs."""
    if not _truthy(filters):
        return True  # `!filters`: null, [] and the like mean no filters
    if not isinstance(filters, list):
        return False  # `.every` of a non-array throws, and the event is not delivered
    return all(_passes_one(item, data) for item in filters)


def _passes_one(item: object, data: object) -> bool:
    if item is None:
        return False  # `.field_path` of null throws, and so does their catch: not delivered
    raw = _nested(data, _property(item, "field_path"))
    value = _property(item, "value")
    operator = _property(item, "operator")
    if raw is UNDEFINED:
        wanted = normalize(value)
        return (wanted is UNDEFINED or wanted is None) and operator == "equals"
    field_value, filter_value = normalize(raw), normalize(value)
    if not isinstance(operator, str):
        return False
    if operator == "equals":
        return _strict_equal(field_value, filter_value)
    if operator == "not_equals":
        return not _strict_equal(field_value, filter_value)
    if operator in ("greater_than", "less_than"):
        left, right = js_number(field_value), js_number(filter_value)
        if math.isnan(left) or math.isnan(right):
            return False
        return left > right if operator == "greater_than" else left < right
    if operator in ("contains", "not_contains"):
        found = _js_contains(field_value, filter_value)
        return found if operator == "contains" else not found
    return False  # an unknown operator rejects the event


def _js_contains(field_value: JsValue, filter_value: JsValue) -> bool:
    if isinstance(field_value, list):
        wanted = js_string(filter_value).lower()
        return any(wanted in js_string(item).lower() for item in field_value)
    text = js_string(field_value if _truthy(field_value) else "").lower()
    return js_string(filter_value if _truthy(filter_value) else "").lower() in text


def normalize(value: JsValue) -> JsValue:
    """Their `normalizeValue`: null/undefined/true/false spelt as text (any case) and decimal
    digits as text become those values; everything else is left alone."""
    if not isinstance(value, str):
        return value
    special: dict[str, JsValue] = {
        "null": None,
        "undefined": UNDEFINED,
        "true": True,
        "false": False,
    }
    lower = value.lower()
    if lower in special:
        return special[lower]
    trimmed = value.strip(_JS_SPACE)
    if trimmed and _DIGITS_TEXT.fullmatch(trimmed):
        return float(trimmed)
    return value


def _nested(data: object, path: object) -> JsValue:
    """Their `getNestedValue`: `a.b`, `a[0].b`; any falsy step on the way gives undefined."""
    if not isinstance(path, str):
        return UNDEFINED  # `path.split` throws; their catch answers undefined
    current: JsValue = data
    for part in path.split("."):
        if not _truthy(current):
            return UNDEFINED
        keyed = _KEY_INDEX.fullmatch(part)
        if keyed:
            array = _property(current, keyed[1])
            index = int(keyed[2])
            if not isinstance(array, list):
                return UNDEFINED
            current = array[index] if index < len(array) else UNDEFINED
        else:
            current = _property(current, part)
    return current


def _property(value: JsValue, key: str) -> JsValue:
    """`value[key]` for JSON values (own keys, array/string indexes and `length`; the
    prototype's other properties are left out)."""
    if isinstance(value, dict):
        return value.get(key, UNDEFINED)
    if isinstance(value, list | str):
        if key == "length":
            return float(len(value))
        if _ARRAY_INDEX.fullmatch(key) and int(key) < len(value):
            return value[int(key)]
    return UNDEFINED


def _truthy(value: JsValue) -> bool:
    if value is UNDEFINED or value is None or value is False:
        return False
    if _is_number(value):
        return not (value == 0 or math.isnan(float(value)))  # type: ignore[arg-type]
    return value != ""


def _strict_equal(left: JsValue, right: JsValue) -> bool:
    """`===`: same type and value; arrays and objects are never the same object."""
    if _is_number(left) and _is_number(right):
        return float(left) == float(right)  # type: ignore[arg-type]
    if isinstance(left, bool) and isinstance(right, bool):
        return left is right
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    return (left is None and right is None) or (left is UNDEFINED and right is UNDEFINED)


def js_number(value: JsValue) -> float:
    """JavaScript's `Number(value)`."""
    if value is UNDEFINED:
        return math.nan
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if _is_number(value):
        return float(value)  # type: ignore[arg-type]
    if isinstance(value, str):
        text = value.strip(_JS_SPACE)
        if not text:
            return 0.0
        if len(text) > 2 and text[0] == "0" and text[1].lower() in _RADIX:
            radix = _RADIX[text[1].lower()]
            if _RADIX_DIGITS[radix].fullmatch(text[2:]):
                return float(int(text[2:], radix))
            return math.nan
        return float(text) if _DECIMAL.fullmatch(text) else math.nan
    if isinstance(value, list):
        return js_number(js_string(value))
    return math.nan


def js_string(value: JsValue) -> str:
    """JavaScript's `String(value)`."""
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return _number_text(float(value))  # type: ignore[arg-type]
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join("" if item is None else js_string(item) for item in value)
    return "[object Object]"


def _number_text(number: float) -> str:
    """ECMAScript's Number::toString: the shortest digits, exponent only past 1e21 / 1e-7."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    parts = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(str(d) for d in parts.digits)
    point = int(parts.exponent) + len(digits)  # the value is 0.digits x 10^point
    if len(digits) <= point <= 21:
        text = digits + "0" * (point - len(digits))
    elif 0 < point <= 21:
        text = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        exponent = point - 1
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        text = f"{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"
    return sign + text


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- conversion ---------------------------------------------------------------------------------


class Outcome(StrEnum):
    """What converting one of their filters did to what passes."""

    EXACT = "exact"  # the same events pass
    NARROWER = "narrower"  # some events they delivered are now blocked: a warning
    UNUSUAL = (
        "unusual"  # some they blocked now pass, but only odd spellings (" 7", "07"): a warning
    )
    WIDER = "wider"  # some they blocked now pass: the webhook is imported disabled
    DROPPED = "dropped"  # cannot be said here; left out, the webhook is imported disabled

    @property
    def disables(self) -> bool:
        return self in (Outcome.WIDER, Outcome.DROPPED)

    @property
    def warns(self) -> bool:
        return self in (Outcome.NARROWER, Outcome.UNUSUAL)


@dataclass(frozen=True)
class FilterReport:
    """One of their filters: what became of it and why."""

    number: int  # its position in their array, from 1
    source: str  # their filter, as `path operator value`
    outcome: Outcome
    converted: tuple[Filter, ...]
    detail: str  # what changes, or why it could not be converted; "" when exact

    @property
    def converted_text(self) -> str:
        return " and ".join(describe_filter(f) for f in self.converted) or "(nothing)"


@dataclass(frozen=True)
class ConvertedFilters:
    """A subscription's filters, converted: ours to save, and a report per filter of theirs."""

    filters: tuple[Filter, ...]
    reports: tuple[FilterReport, ...]

    @property
    def disables(self) -> bool:
        return any(report.outcome.disables for report in self.reports)


def convert_filters(raw: object, *, sample: object = UNDEFINED) -> ConvertedFilters:
    """Convert a subscription's stored `filters`. `sample`, an event body of the subscription's
    type if one is known, tells whether a number-like value is a number or text there."""
    if not _truthy(raw):
        return ConvertedFilters((), ())
    if not isinstance(raw, list):
        report = FilterReport(
            1,
            _compact(raw),
            Outcome.DROPPED,
            (),
            "the filters are not a JSON array: socket2webhook delivered no event of this "
            "subscription",
        )
        return ConvertedFilters((), (report,))
    reports = tuple(_convert_one(number, item, sample) for number, item in enumerate(raw, 1))
    return ConvertedFilters(tuple(f for r in reports for f in r.converted), reports)


def _convert_one(number: int, item: object, sample: object) -> FilterReport:
    if item is None:
        return FilterReport(
            number,
            "null",
            Outcome.DROPPED,
            (),
            "an empty entry, on which socket2webhook failed: it delivered no event of this "
            "subscription",
        )
    source = _source_text(item)
    if not isinstance(item, dict):
        return FilterReport(
            number,
            source,
            Outcome.DROPPED,
            (),
            "not a filter object: socket2webhook blocked every event with it",
        )
    path, operator, value = (
        item.get("field_path", UNDEFINED),
        item.get("operator", UNDEFINED),
        item.get("value", UNDEFINED),
    )
    steps, problem = translate_path(path)
    if problem is None and (not isinstance(operator, str) or operator not in _OPERATORS):
        problem = (
            f"operator {_compact(operator)} is not one we have (nor did socket2webhook: it "
            "blocked every event with this filter)"
        )
    if problem is None:
        converted, problem = _candidates(Operator(str(operator)), steps, value, sample)
    if problem is not None:
        return FilterReport(number, source, Outcome.DROPPED, (), problem)
    outcome, detail = _compare(item, converted, steps, value)
    return FilterReport(number, source, outcome, converted, detail)


def translate_path(path: object) -> tuple[tuple[Step, ...], str | None]:
    """Their `field_path` as our steps, or why it cannot be one (the steps are then empty)."""
    if not isinstance(path, str) or not path:
        return (), f"field_path {_compact(path)} is not a path"
    steps: list[Step] = []
    for part in path.split("."):
        keyed = _KEY_INDEX.fullmatch(part)
        if keyed:
            steps += [keyed[1], int(keyed[2])]
        elif not part or "[" in part or "]" in part:
            return (
                (),
                f"path step {part!r} addresses nothing we can (socket2webhook read it as a key)",
            )
        elif part == "length" or _ALL_DIGITS.fullmatch(part):
            return (), (
                f"path step {part!r} reads an array's length or element in socket2webhook and "
                "an object key here (write array elements as key[n])"
            )
        else:
            steps.append(part)
    return tuple(steps), None


def render_path(steps: Sequence[Step]) -> str:
    text = ""
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def _candidates(
    operator: Operator, steps: tuple[Step, ...], value: object, sample: object
) -> tuple[tuple[Filter, ...], str | None]:
    """Our filters for their (operator, value) on `steps`, or why there are none."""
    path = render_path(steps)
    wanted = normalize(value)
    if wanted is UNDEFINED:
        return (), 'no value (or "undefined"), which only a missing field matched'
    try:
        if operator is Operator.EQUALS:
            if isinstance(wanted, list | dict):
                return (
                    (),
                    "socket2webhook never found an array or object equal: it blocked every event",
                )
            if _is_number(wanted) and isinstance(_resolve(sample, steps), str):
                wanted = js_string(wanted)  # the field is text in this event type
            return (Filter(path, operator, _json(wanted)),), None
        if operator is Operator.NOT_EQUALS:
            guard = _existence(steps)
            if isinstance(wanted, list | dict):
                return guard, None  # nothing is `!==` to it: it passed whenever the field existed
            alike: list[JsonValue] = [_json(wanted)]
            if not isinstance(wanted, str):
                alike.append(js_string(wanted))  # 7 and "7", true and "true", null and "null"
            return guard + tuple(Filter(path, operator, v) for v in alike), None
        if operator in (Operator.GREATER_THAN, Operator.LESS_THAN):
            number = js_number(wanted)
            if not math.isfinite(number):
                return (), (
                    f"value {_compact(value)} is not a number, and socket2webhook compared "
                    "numbers only: it blocked every event"
                )
            return (Filter(path, operator, _json(number)),), None
        # contains / not_contains
        if not _truthy(wanted) or not (isinstance(wanted, str) or _is_number(wanted)):
            return (), (
                f"socket2webhook searched for {_compact(value)} as the text "
                f"{json.dumps(js_string(wanted if _truthy(wanted) else ''))}, which we cannot say"
            )
        text = js_string(wanted)
        if operator is Operator.CONTAINS:
            if _is_number(wanted) and _is_number(_resolve(sample, steps)):
                return (Filter(path, Operator.EQUALS, _json(wanted)),), None  # a number field
            return (Filter(path, operator, text),), None
        return (*_existence(steps), Filter(path, operator, text)), None
    except InvalidFilter as error:
        return (), f"cannot be saved here: {error}"


def _existence(steps: tuple[Step, ...]) -> tuple[Filter, ...]:
    """A filter that fails when the field is missing (the parent object has its key), where
    the path allows one: not for a top-level key, nor for an array element."""
    if len(steps) < 2 or not isinstance(steps[-1], str):
        return ()
    return (Filter(render_path(steps[:-1]), Operator.CONTAINS, steps[-1]),)


def _resolve(data: object, steps: Sequence[Step]) -> object:
    current = data
    for step in steps:
        if isinstance(step, int):
            if not isinstance(current, list) or step >= len(current):
                return UNDEFINED
            current = current[step]
        else:
            if not isinstance(current, dict) or step not in current:
                return UNDEFINED
            current = current[step]
    return current


def _json(value: JsValue) -> JsonValue:
    """A normalised value as JSON for our filter: whole numbers as integers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return int(value)
    return value  # type: ignore[return-value]


# -- what changes: probes -----------------------------------------------------------------------

_MISSING_LABEL: Final = "a missing field"
_MAX_EXAMPLES: Final = 4


@dataclass(frozen=True)
class _Probe:
    label: str
    event: object
    unusual: bool  # an odd spelling: a difference here alone only warns


def _compare(
    item: Mapping[str, object], converted: Sequence[Filter], steps: tuple[Step, ...], value: object
) -> tuple[Outcome, str]:
    """Run their filter and our conversion on the probes; the outcome and what differs."""
    blocked: dict[str, bool] = {}  # label -> unusual
    delivered: dict[str, bool] = {}
    for probe in _probes(steps, value):
        theirs = socket2webhook_passes([item], probe.event)
        ours = matches_all(converted, probe.event)
        if theirs != ours:
            differs = blocked if theirs else delivered
            differs[probe.label] = differs.get(probe.label, True) and probe.unusual
    parts = []
    if blocked:
        parts.append("now blocked: " + _examples(blocked))
    if delivered:
        parts.append("now also delivered: " + _examples(delivered))
    detail = "; ".join(parts)
    if not all(delivered.values()):
        return Outcome.WIDER, detail
    if delivered:
        return Outcome.UNUSUAL, detail + " (odd values only)"
    return (Outcome.NARROWER if blocked else Outcome.EXACT), detail


def _examples(differences: Mapping[str, bool]) -> str:
    """The differing probes' labels, the plausible ones first, at most a few."""
    labels = sorted(differences, key=lambda label: differences[label])  # stable: False first
    shown = ", ".join(labels[:_MAX_EXAMPLES])
    return shown + (
        f" and {len(labels) - _MAX_EXAMPLES} more" if len(labels) > _MAX_EXAMPLES else ""
    )


def _probes(steps: tuple[Step, ...], value: object) -> list[_Probe]:
    """Events around the filter's value: its field missing, then holding each probe value."""
    probes = [_Probe(_MISSING_LABEL, {}, False)]
    if len(steps) > 1:  # a parent to hold, or not hold, the field
        leaf = steps[-1]
        empty_parent: object = [None] * leaf if isinstance(leaf, int) else {}
        probes.append(_Probe(_MISSING_LABEL, _place(steps[:-1], empty_parent), False))
        probes.append(_Probe(_MISSING_LABEL, _place(steps[:-1], None), False))
    seen: set[str] = set()
    for leaf_value, unusual in _leaf_values(value):
        key = json.dumps([type(leaf_value).__name__, leaf_value], sort_keys=True)
        if key not in seen:
            seen.add(key)
            probes.append(_Probe(describe_value(leaf_value), _place(steps, leaf_value), unusual))
    return probes


def _place(steps: Sequence[Step], leaf: object) -> object:
    """An event holding `leaf` at `steps` (earlier array elements are null)."""
    built = leaf
    for step in reversed(steps):
        built = [None] * step + [built] if isinstance(step, int) else {step: built}
    return built


def _leaf_values(value: object) -> Iterable[tuple[object, bool]]:
    """(value, unusual) pairs: the field's plausible values near `value`, and odd ones."""
    common: tuple[object, ...] = (None, True, False, 0, 1, "", "x", [], "null", "true", "false")
    odd: tuple[object, ...] = ("NULL", "True", "undefined", {})
    yield from ((v, False) for v in common)
    yield from ((v, True) for v in odd)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        yield value, False
    wanted = normalize(value)
    if isinstance(wanted, bool):
        text = js_string(wanted)
        yield from ((v, False) for v in (text, [wanted], [text], f"x{text}y"))
        yield text.upper(), True
    elif isinstance(wanted, str) and wanted:
        variants = (wanted, wanted.upper(), wanted.lower(), wanted.capitalize(), wanted.swapcase())
        yield from ((v, False) for v in variants)
        yield from ((f"x{v}y", False) for v in variants)
        yield from (([v], False) for v in variants)
        yield from (([f"x{v}y"], False) for v in variants)
        if len(wanted) > 1:
            yield wanted[:-1], False
        yield {wanted: 1}, True
    number = js_number(wanted)  # what the ordered operators compare with (true is 1)
    if math.isfinite(number):
        yield from _numbers_near(number)


def _numbers_near(number: float) -> Iterable[tuple[object, bool]]:
    """The number, its neighbours, and the ways text and arrays can spell it."""
    whole, text = _json(number), js_string(number)
    near = (whole, _json(number + 1), _json(number - 1), text, f"x{text}y", [whole], [text])
    yield from ((v, False) for v in near)
    yield from ((v, False) for v in ([f"x{text}y"], text + "1"))
    yield from ((js_string(number + step), False) for step in (1, -1))
    if isinstance(whole, int) and whole >= 0:
        yield int(text + "1"), False  # a number whose digits contain it
    yield from ((v, True) for v in ("0" + text, f" {text} ", text + ".0", text + "."))


def describe_value(value: object) -> str:
    """A field value for a person: `text "7"`, `number 7`, `array ["vip"]`, `null`."""
    text = json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {text}"
    if isinstance(value, int | float):
        return f"number {text}"
    if isinstance(value, str):
        return f"text {text}"
    return f"{'array' if isinstance(value, list) else 'object'} {text}"


def describe_filter(f: Filter) -> str:
    return f"{f.field_path} {f.operator.value} {json.dumps(f.value, ensure_ascii=False)}"


def _source_text(item: object) -> str:
    if not isinstance(item, dict):
        return _compact(item)
    parts = [
        item["field_path"]
        if isinstance(item.get("field_path"), str)
        else _compact(item.get("field_path", UNDEFINED)),
        item["operator"]
        if isinstance(item.get("operator"), str)
        else _compact(item.get("operator", UNDEFINED)),
        _compact(item.get("value", UNDEFINED)),
    ]
    return " ".join(parts)


def _compact(value: object) -> str:
    if value is UNDEFINED:
        return "(none)"
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
