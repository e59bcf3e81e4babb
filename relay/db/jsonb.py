"""Client JSON read into what PostgreSQL's jsonb can store: every face that stores a
client's JSON (intake's events, the management API's bodies) reads it here, so a NUL
character, a lone surrogate or an overflowing number is a 400 naming the body, never a
database error later."""

from __future__ import annotations

import json
import math

import orjson

from relay.errors import InputError

# orjson reads an integer beyond 64 bits as a float, losing digits; a body with a run of 19
# digits may hold one, so it is read by Python's json, which keeps every digit. The run is
# found by mapping digits to "1" and all else to " " (2 us for a 1.2 KB event, a regular
# expression took 24).
_DIGITS_AS_ONES = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_NINETEEN_DIGITS = b"1" * 19
# The only way a NUL gets into a JSON string (a raw NUL byte is not valid JSON).
_NUL_ESCAPE = b"\\u0000"


def require_json_content_type(value: str | None) -> None:
    """A JSON body must say so: `application/json` or a `+json` type, else 415."""
    media_type = (value or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise InputError(415, "content-type", "must be application/json")


def decode_json(body: bytes) -> object:
    """The body as Python objects, or a 400 that says what is wrong with it.

    The common case takes orjson: Python's json (reading here, writing the delivery body)
    and the walk below were about a fifth of intake's CPU (py-spy, 2026-12-01). Anything
    orjson refuses, or might read inexactly, goes the way of Python's json, whose messages
    say where a body is broken.
    """
    if _NINETEEN_DIGITS not in body.translate(_DIGITS_AS_ONES):
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # read again below, for the message
        else:
            if _NUL_ESCAPE in body:  # orjson itself refuses lone surrogates and infinities
                _check_storable(document)
            return document
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(400, "body", f"is not valid UTF-8 (byte {exc.start})") from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except InputError:
        raise
    except json.JSONDecodeError as exc:
        raise InputError(400, "body", f"is not valid JSON: {exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise InputError(400, "body", "is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python allows
        raise InputError(400, "body", f"is not valid JSON: {exc}") from None
    _check_storable(document)
    return document


def _refuse_constant(name: str) -> object:
    """Python's json takes NaN and Infinity; JSON (and PostgreSQL's jsonb) do not."""
    raise InputError(400, "body", f"is not valid JSON: {name} is not a JSON number")


def _check_storable(document: object) -> None:
    """PostgreSQL's jsonb (the execution log) refuses NUL characters and lone surrogates."""
    stack = [document]
    while stack:  # iterative: json.loads already bounded the depth, the walk needs no stack
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            _check_text(node)
        elif isinstance(node, float) and not math.isfinite(node):  # 1e400 overflows to inf
            raise InputError(400, "body", "holds a number too large for JSON (overflows)")


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise InputError(400, "body", "contains a NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            400, "body", "contains a lone UTF-16 surrogate (\\ud800-\\udfff)"
        ) from None
