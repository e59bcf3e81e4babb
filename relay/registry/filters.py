"""Webhook filters: which events a subscription wants, checked against the event's `data`.

A subscription (`webhook_events.filters`) stores a JSON array of filters; an event is delivered
only when ALL of them pass (an empty array passes everything)::

    [{"field_path": "callHistory.campaign.id", "operator": "equals", "value": 201074},
     {"field_path": "callHistory.call_date", "operator": "greater_than",
      "value": "2026-11-24T00:00:00-03:00"}]

Field paths
-----------
Dot-separated object keys, each optionally followed by `[n]` array indexes:
`callHistory.campaign.id`, `items[0].sku`, `a.b[2][0].c`; a path may start with an index
(`[0].id`) for events whose body is an array. Keys are any non-empty text without `.`, `[`
or `]` (such keys cannot be addressed); indexes are non-negative decimal integers without
leading zeros. Paths are parsed once, when the filter is saved or loaded, and malformed ones
(`""`, `a..b`, `.a`, `a.`, `a[x]`, `a[-1]`, `a[0`, `a]`) are rejected.

A path is MISSING when any step does not exist: the key is absent, the index is out of range,
or the step goes into something that is not a container (a key into an array or a scalar, an
index into an object or a scalar). A JSON `null` at the path is NOT missing: it is a value.

| operator       | field missing | field present (`null` included): passes when             |
|----------------|---------------|----------------------------------------------------------|
| `equals`       | fails         | the field is JSON-equal to `value`                       |
| `not_equals`   | passes        | the field is not JSON-equal to `value`                   |
| `greater_than` | fails         | field > `value`, both numbers or both strings            |
| `less_than`    | fails         | field < `value`, both numbers or both strings            |
| `contains`     | fails         | string: has substring; array: has element; object: key  |
| `not_contains` | passes        | `contains` fails                                         |

`not_equals` and `not_contains` are always the exact negation of `equals` and `contains`:
a missing field certainly does not equal or contain anything.

Comparison rules
----------------
* JSON equality has no type coercion: `1` is not `"1"` and `true` is not `1` (unlike Python's
  `True == 1`), but `1` equals `1.0` (JSON has a single number type). Arrays compare in order,
  objects by key set and values, recursively.
* `greater_than` / `less_than` compare numbers numerically and strings by code point (so
  ISO-8601 timestamps compare as times only when they share a format and a UTC offset). Any
  other pairing (number vs string, booleans, null, arrays, objects) fails; it never raises.
* `contains`: on a string field, `value` must be a string and a substring of it; on an array
  field, some element must be JSON-equal to `value` (no deep search); on an object field,
  `value` must be a string naming one of its keys; on a number, boolean or null it fails.
  There is no coercion: `"5582..." contains 5582` fails.

Validation (when a filter is saved or loaded)
---------------------------------------------
Each filter is an object with exactly the keys `field_path` (a valid path), `operator` (one of
the six above) and `value` (any JSON value; numbers must be finite and nesting at most
`MAX_VALUE_DEPTH` deep), plus, per operator:

| operator                      | allowed `value`                                           |
|-------------------------------|-----------------------------------------------------------|
| `equals`, `not_equals`        | any JSON value                                            |
| `greater_than`, `less_than`   | a number or a string (not a boolean: it has no order)     |
| `contains`, `not_contains`    | a string, number, boolean or null                         |

Arrays and objects are refused for `contains`: matching array elements by whole-object equality
is brittle, and "array contains array" reads like a subset test, which it would not be.

Errors are `InvalidFilter` naming the item and field, e.g.
`filters[1].operator: unknown operator 'eq' (expected one of: equals, ...)`.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, TypeAlias, cast

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
Step: TypeAlias = str | int

# Deep enough for any sensible filter value, shallow enough that copying, hashing and
# serialising it can never hit Python's recursion limit.
MAX_VALUE_DEPTH: Final = 32

FILTER_KEYS: Final = ("field_path", "operator", "value")


class Operator(StrEnum):
    """The comparison a filter applies; the string is what is stored in the database."""

    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    GREATER_THAN = "greater_than"
    LESS_THAN = "less_than"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"


_OPERATOR_NAMES: Final = ", ".join(op.value for op in Operator)
_ORDERED: Final = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})
_CONTAINMENT: Final = frozenset({Operator.CONTAINS, Operator.NOT_CONTAINS})
_INDEX: Final = re.compile(r"0|[1-9][0-9]*")


class InvalidFilter(ValueError):
    """A filter that cannot be saved; `location` says where (`filters[1].operator`)."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason


class _Missing:
    """The sentinel for a path that does not resolve (distinct from a JSON null)."""


_MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True, eq=False)
class Filter:
    """One validated filter. Constructing it validates it, so a `Filter` is always usable.

    Equality and hashing follow JSON semantics for `value` (`1` == `1.0`, `true` != `1`).
    """

    field_path: str
    operator: Operator
    value: JsonValue
    steps: tuple[Step, ...] = field(init=False, repr=False)
    _identity: tuple[str, str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.field_path, str):
            raise InvalidFilter(
                "field_path", f"expected a string, got {_json_type(self.field_path)}"
            )
        if not isinstance(self.operator, str):
            raise InvalidFilter("operator", f"expected a string, got {_json_type(self.operator)}")
        steps = parse_path(self.field_path)
        operator = _parse_operator(self.operator)
        _check_value(operator, self.value)
        identity = (self.field_path, operator.value, _canonical_json(self.value))
        # The value is copied so that the caller's (mutable) JSON cannot change a frozen filter.
        object.__setattr__(self, "operator", operator)
        object.__setattr__(self, "value", copy.deepcopy(self.value))
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "_identity", identity)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Filter):
            return NotImplemented
        return self._identity == other._identity

    def __hash__(self) -> int:
        return hash(self._identity)

    def matches(self, data: object) -> bool:
        """Whether `data` (an event body) passes this filter; never raises for any JSON input."""
        found = _resolve(data, self.steps)
        op = self.operator
        if op is Operator.EQUALS:
            return not isinstance(found, _Missing) and json_equal(found, self.value)
        if op is Operator.NOT_EQUALS:
            return isinstance(found, _Missing) or not json_equal(found, self.value)
        if op is Operator.CONTAINS:
            return not isinstance(found, _Missing) and _contains(found, self.value)
        if op is Operator.NOT_CONTAINS:
            return isinstance(found, _Missing) or not _contains(found, self.value)
        if isinstance(found, _Missing):
            return False
        return _ordered(found, self.value, greater=op is Operator.GREATER_THAN)

    def to_json(self) -> dict[str, JsonValue]:
        """The stored form: the object `parse_filter` accepts."""
        return {
            "field_path": self.field_path,
            "operator": self.operator.value,
            "value": copy.deepcopy(self.value),
        }


def parse_filter(raw: object, where: str = "filter") -> Filter:
    """Validate one decoded JSON filter object; errors are located as `{where}.{field}`."""
    if not isinstance(raw, dict):
        raise InvalidFilter(where, f"expected an object, got {_json_type(raw)}")
    unexpected = sorted(str(key) for key in raw if key not in FILTER_KEYS)
    if unexpected:
        raise InvalidFilter(
            f"{where}.{unexpected[0]}",
            f"unexpected key (allowed keys: {', '.join(FILTER_KEYS)})",
        )
    for key in FILTER_KEYS:
        if key not in raw:
            raise InvalidFilter(f"{where}.{key}", "required key is missing")
    field_path, operator, value = raw["field_path"], raw["operator"], raw["value"]
    try:
        if not isinstance(field_path, str):
            raise InvalidFilter("field_path", f"expected a string, got {_json_type(field_path)}")
        if not isinstance(operator, str):
            raise InvalidFilter("operator", f"expected a string, got {_json_type(operator)}")
        # Filter.__post_init__ checks the value; the cast only tells mypy what it will enforce.
        return Filter(field_path, _parse_operator(operator), cast(JsonValue, value))
    except InvalidFilter as error:
        raise InvalidFilter(f"{where}.{error.location}", error.reason) from None


def parse_filters(raw: object) -> tuple[Filter, ...]:
    """Validate a subscription's decoded JSON filter array (from the CLI or the database)."""
    if not isinstance(raw, list):
        raise InvalidFilter(
            "filters", f"expected an array of filter objects, got {_json_type(raw)}"
        )
    return tuple(parse_filter(item, f"filters[{index}]") for index, item in enumerate(raw))


def filters_to_json(filters: Iterable[Filter]) -> list[dict[str, JsonValue]]:
    """The JSON array to store in `webhook_events.filters`; `parse_filters` reads it back."""
    return [f.to_json() for f in filters]


def matches_all(filters: Iterable[Filter], data: object) -> bool:
    """Whether `data` passes every filter (so no filters means deliver everything)."""
    return all(f.matches(data) for f in filters)


def parse_path(path: str) -> tuple[Step, ...]:
    """Split `a.b[2][0].c` into `("a", "b", 2, 0, "c")`, rejecting malformed paths."""
    if not path:
        raise InvalidFilter("field_path", "must not be empty")

    def bad(reason: str) -> InvalidFilter:
        return InvalidFilter("field_path", f"invalid path {path!r}: {reason}")

    steps: list[Step] = []
    pos, end = 0, len(path)
    while True:
        # A segment: a key, then any number of [n] indexes (only the first may omit the key).
        start = pos
        while pos < end and path[pos] not in ".[]":
            pos += 1
        if pos > start:
            steps.append(path[start:pos])
        elif start > 0 or pos == end or path[pos] != "[":
            if pos < end and path[pos] == "]":
                raise bad(f"unexpected ']' at offset {pos}")
            raise bad(f"empty key at offset {start}")
        while pos < end and path[pos] == "[":
            close = path.find("]", pos + 1)
            if close < 0:
                raise bad(f"unclosed '[' at offset {pos}")
            text = path[pos + 1 : close]
            if not _INDEX.fullmatch(text):
                if text.startswith("-"):
                    raise bad(f"negative index [{text}] (indexes count from 0)")
                raise bad(f"index [{text}] is not a non-negative integer without leading zeros")
            steps.append(int(text))
            pos = close + 1
        if pos == end:
            return tuple(steps)
        if path[pos] != ".":
            raise bad(f"unexpected {path[pos]!r} at offset {pos} (expected '.' or '[')")
        pos += 1
        if pos == end:
            raise bad("trailing '.'")


def _resolve(data: object, steps: tuple[Step, ...]) -> object:
    """The value at `steps` in `data`, or `_MISSING` when any step does not exist."""
    current = data
    for step in steps:
        if isinstance(step, int):
            if not isinstance(current, list) or not 0 <= step < len(current):
                return _MISSING
            current = current[step]
        else:
            if not isinstance(current, dict):
                return _MISSING
            current = current.get(step, _MISSING)
            if current is _MISSING:
                return _MISSING
    return current


def json_equal(left: object, right: object) -> bool:
    """JSON equality: no coercion, booleans are not numbers, `1 == 1.0`; iterative, never raises.

    Iterative so that deeply nested event data cannot hit the recursion limit.
    """
    pending: list[tuple[object, object]] = [(left, right)]
    while pending:
        a, b = pending.pop()
        if isinstance(a, bool) or isinstance(b, bool):
            if not (isinstance(a, bool) and isinstance(b, bool) and a == b):
                return False
        elif _is_number(a) or _is_number(b):
            if not (_is_number(a) and _is_number(b) and a == b):
                return False
        elif isinstance(a, str) or isinstance(b, str):
            if not (isinstance(a, str) and isinstance(b, str) and a == b):
                return False
        elif a is None or b is None:
            if not (a is None and b is None):
                return False
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif isinstance(a, dict) and isinstance(b, dict):
            if len(a) != len(b) or a.keys() != b.keys():
                return False
            pending.extend((a[key], b[key]) for key in a)
        else:
            return False
    return True


def _contains(found: object, value: JsonValue) -> bool:
    if isinstance(found, str):
        return isinstance(value, str) and value in found
    if isinstance(found, list):
        return any(json_equal(element, value) for element in found)
    if isinstance(found, dict):
        return isinstance(value, str) and value in found
    return False


def _ordered(found: object, value: JsonValue, *, greater: bool) -> bool:
    if _is_number(found) and _is_number(value):
        a, b = cast(float, found), cast(float, value)
        return a > b if greater else a < b
    if isinstance(found, str) and isinstance(value, str):
        return found > value if greater else found < value
    return False


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_operator(operator: str) -> Operator:
    try:
        return Operator(operator)
    except ValueError:
        raise InvalidFilter(
            "operator", f"unknown operator {operator!r} (expected one of: {_OPERATOR_NAMES})"
        ) from None


def _check_value(operator: Operator, value: object) -> None:
    """Reject values that are not JSON, or that the operator could never use sensibly."""
    _check_json(value)
    if operator in _ORDERED and not (_is_number(value) or isinstance(value, str)):
        raise InvalidFilter(
            "value", f"{operator.value} needs a number or a string, got {_json_type(value)}"
        )
    if operator in _CONTAINMENT and isinstance(value, list | dict):
        raise InvalidFilter(
            "value",
            f"{operator.value} needs a string, number, boolean or null, got {_json_type(value)}",
        )


def _check_json(value: object) -> None:
    """Walk `value` iteratively: finite numbers, string keys, bounded depth, JSON types only."""
    pending: list[tuple[object, str, int]] = [(value, "value", 1)]
    while pending:
        item, where, depth = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidFilter(where, f"{item} is not a valid JSON number")
        if isinstance(item, list | dict):
            if depth > MAX_VALUE_DEPTH:
                raise InvalidFilter(where, f"nested deeper than {MAX_VALUE_DEPTH} levels")
            if isinstance(item, list):
                pending.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(item))
                continue
            for key, v in item.items():
                if not isinstance(key, str):
                    raise InvalidFilter(where, f"object key {key!r} is not a string")
                pending.append((v, f"{where}.{key}", depth + 1))
        elif not (item is None or isinstance(item, str | int | float)):
            raise InvalidFilter(where, f"{type(item).__name__} is not a JSON value")


def _canonical_json(value: JsonValue) -> str:
    """A text that is equal exactly when values are `json_equal` (for `__eq__`/`__hash__`)."""

    def normalise(item: JsonValue) -> JsonValue:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, list):
            return [normalise(v) for v in item]
        if isinstance(item, dict):
            return {k: normalise(v) for k, v in item.items()}
        return item

    return json.dumps(normalise(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _json_type(value: object) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
