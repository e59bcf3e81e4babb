"""Registering secrets for masking costs linear work: a registry load of many webhooks builds
the pattern of known secrets once, not once per secret (1,000 signed webhooks took `relay
serve` 30 s to get ready when each secret recompiled a pattern of all of them). What is
masked stays the same: every registered secret, however short, the longest match first."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from relay.db import migrations
from relay.db.engine import make_engine
from relay.ops import redaction
from relay.ops.redaction import MASK, Redactor
from relay.registry import writes
from relay.registry.cache import Registry

WEBHOOKS = 200


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], int]:
    """Counts `re.compile` calls from now on; the function returns how many compiled a
    pattern holding any of the given secrets (every other caller's patterns are ignored)."""
    patterns: list[str] = []
    real = re.compile

    def compile_and_count(pattern: Any, flags: int = 0) -> re.Pattern[Any]:
        patterns.append(pattern if isinstance(pattern, str) else "")
        return real(pattern, flags)

    monkeypatch.setattr(re, "compile", compile_and_count)

    def count(secrets: list[str]) -> int:
        escaped = [re.escape(secret) for secret in secrets]
        return sum(1 for p in patterns if any(e in p for e in escaped))

    return count


@pytest.fixture
def registry_engine(tmp_path: Path) -> Iterator[Engine]:
    """The embedded default database (SQLite), migrated, in a private directory."""
    url = f"sqlite:///{tmp_path / 'db' / 'relay.db'}"
    engine = make_engine(url)
    migrations.upgrade(url)
    yield engine
    engine.dispose()


def test_a_registry_load_of_many_secrets_builds_the_pattern_once(
    registry_engine: Engine, compiled: Callable[[list[str]], int]
) -> None:
    company = writes.add_company(registry_engine, "Many hooks").id
    secrets = [f"plain-{n}-{writes.new_signing_secret()[6:]}" for n in range(WEBHOOKS)]
    for n, secret in enumerate(secrets):
        writes.add_webhook(
            registry_engine,
            company_id=company,
            url=f"https://hooks.example.com/{n}",
            event="call-history-was-created",
            filters=(),
            secret=secret,
        )
    assert Registry(registry_engine).refresh()
    assert compiled(secrets) == 1  # once (before: 200 compiles of a growing pattern)
    text = " ".join(secrets)
    assert redaction.redact(text) == " ".join([MASK] * WEBHOOKS)
    assert Registry(registry_engine).refresh()  # a reload with nothing new compiles nothing
    assert compiled(secrets) == 1


def test_secrets_registered_together_mask_the_longest_first_and_every_length() -> None:
    masking = Redactor()
    masking.register_all(["token-1", "token-12", "x", None, ""])
    assert masking.redact("a token-12b") == f"a {MASK}b"  # whole, not "***2"
    assert masking.redact("token-1 and x") == f"{MASK} and {MASK}"


def test_secrets_registered_one_by_one_mask_as_registered_together() -> None:
    one_by_one, together = Redactor(), Redactor()
    secrets = ["abc", "abcdef", "zz"]
    for secret in secrets:
        one_by_one.register(secret)
    together.register_all(secrets)
    text = "abcdefg abc zz abcde"
    assert one_by_one.redact(text) == together.redact(text) == f"{MASK}g {MASK} {MASK} {MASK}de"
