"""Keyset pagination: a page ends with an opaque cursor holding its last row's sort key, and
the next page starts after that key (`WHERE (key) > (:cursor)`), so a page deep in a list
costs one index range scan, where OFFSET would read and discard every row before it."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any

from relay.errors import InputError

CURSOR_FIELD = "cursor"


def encode_cursor(*key: str) -> str:
    """The cursor after a row whose sort key is `key` (its values as text)."""
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, parsers: Sequence[Callable[[str], Any]]) -> tuple[Any, ...]:
    """The sort key a cursor of `encode_cursor` holds, each value read by its parser; a
    cursor this code did not make is a 422 naming the `cursor` parameter."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        if not isinstance(values, list) or len(values) != len(parsers):
            raise ValueError("wrong shape")
        return tuple(parse(str(value)) for parse, value in zip(parsers, values, strict=True))
    except (ValueError, UnicodeError, binascii.Error):
        raise InputError(422, CURSOR_FIELD, "is not a cursor of this list") from None
