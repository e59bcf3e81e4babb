"""A pytest plugin that fails the run when anything imported `relay`, at collection or while
the tests ran. Loaded with `-p tests.support.no_relay` by test_spool_without_relay.py, which
runs tests/spool under it: the spool library and its tests must stand without the product."""

from __future__ import annotations

import sys

import pytest


def relay_modules() -> list[str]:
    return sorted(name for name in sys.modules if name == "relay" or name.startswith("relay."))


def pytest_sessionfinish(session: pytest.Session) -> None:
    loaded = relay_modules()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    reporter.write_line(f"\nrelay modules loaded: {', '.join(loaded) or 'none'}")
    if loaded:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
