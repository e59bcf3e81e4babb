"""The environment a `relay` under test reads its settings from: the test process's own,
minus every `RELAY_*` variable, so a developer's configuration never leaks into a test.

Settings are named as `RelaySettings` names them (`spool_path=...`) and become the variables
it reads (`RELAY_SPOOL_PATH`), for a real process (`relay_env`) and for `relay.cli.main`
called in the test process (`use_relay_settings`) alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import pytest

from relay.settings import RelaySettings

PREFIX = str(RelaySettings.model_config.get("env_prefix", ""))


def variable(name: str) -> str:
    """The environment variable of the setting `name` (`spool_path` -> `RELAY_SPOOL_PATH`)."""
    return PREFIX + name.upper()


def as_variables(settings: Mapping[str, object]) -> dict[str, str]:
    """Settings by name as environment variables (booleans as `true`/`false`)."""
    return {
        variable(name): str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in settings.items()
    }


def without_relay_settings() -> dict[str, str]:
    """This process's environment without any `RELAY_*` variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}


def relay_env(**settings: object) -> dict[str, str]:
    """The environment of a `relay` process that runs with exactly these settings."""
    return without_relay_settings() | as_variables(settings)


def use_relay_settings(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    """Make the test process's `RELAY_*` variables those of `env` (and only those), for
    `relay.cli.main` run in-process; `monkeypatch` puts the old ones back."""
    for name in [k for k in os.environ if k.startswith(PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith(PREFIX):
            monkeypatch.setenv(name, value)
