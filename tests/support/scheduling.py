"""The order pytest-xdist hands the suite's modules to its workers: the longest first.

`make test` runs the suite on several workers with `--dist loadscope` (a module's tests stay
together on one worker, so its module-scoped fixtures are built once) and
`--no-loadscope-reorder` (modules go out in collection order). A module that takes long and
starts last keeps every other worker waiting for it at the end; started first, it runs while
the others share out the many short modules. So under xdist the collection is sorted by the
seconds each module took in a serial run (`MODULE_SECONDS`), the longest first; the modules
not listed (each under 1.5 s) keep their order after them. Without xdist nothing is reordered.

The scenarios marked `alone` are not here: `make test` runs them after the workers are done,
in a pytest of their own, with the machine to itself (see the marker in pyproject.toml).

The figures need not be exact, only roughly in the right order: refresh them from a serial
run's `--junitxml` (the sum of `time` over a module's test cases) when modules grow or move.
"""

from __future__ import annotations

import pytest

MODULE_SECONDS: dict[str, float] = {
    "tests/relay/test_platform_source.py": 47,
    "tests/relay/test_api_auth.py": 30,
    "tests/faults/test_three_relays.py": 27,
    "tests/faults/test_corrupt_spool.py": 26,
    "tests/faults/test_pg_outage.py": 23,
    "tests/faults/test_bad_intake.py": 21,
    "tests/faults/test_network_cut.py": 19,
    "tests/relay/test_console.py": 18,
    "tests/faults/test_sigterm.py": 17,
    "tests/relay/test_intake_http.py": 15,
    "tests/relay/test_api_webhooks.py": 15,
    "tests/relay/test_api_companies.py": 14,
    "tests/relay/test_platform_streams.py": 13,
    "tests/faults/test_dispatcher_process.py": 12,
    "tests/relay/test_relay_e2e.py": 12,
    "tests/bench/test_platform_bench.py": 12,
    "tests/relay/test_roles.py": 10,
    "tests/relay/test_operations.py": 10,
    "tests/relay/test_accounts.py": 9,
    "tests/faults/test_disk_full.py": 7,
    "tests/relay/test_api_executions.py": 7,
    "tests/faults/test_bad_records.py": 7,
    "tests/relay/test_api_event_types.py": 6,
    "tests/relay/test_api_accounts.py": 6,
    "tests/relay/test_destinations.py": 6,
    "tests/relay/test_accounts_cli.py": 6,
    "tests/relay/test_child_priority.py": 5,
    "tests/bench/test_startup.py": 5,
    "tests/support/test_spool_without_relay.py": 5,
    "tests/relay/test_recovery.py": 5,
    "tests/relay/test_connection_watchdog.py": 5,
    "tests/relay/test_logging.py": 4,
    "tests/relay/test_retention.py": 4,
    "tests/relay/test_retry_policy.py": 4,
    "tests/relay/test_cli_registry.py": 4,
    "tests/support/test_pg_cluster.py": 3,
    "tests/relay/test_dispatcher.py": 3,
    "tests/relay/test_search_plans.py": 3,
    "tests/relay/test_demo.py": 3,
    "tests/support/test_relay_command.py": 3,
    "tests/relay/test_cli.py": 2,
    "tests/relay/test_api_openapi.py": 2,
    "tests/relay/test_migrations.py": 2,
    "tests/relay/test_private_spool.py": 2,
    "tests/relay/test_registry.py": 2,
    "tests/relay/test_messages.py": 2,
    "tests/relay/test_api_dead_letters.py": 2,
    "tests/relay/test_sink.py": 2,
}
"""Seconds per module in a serial run (2 cores, load average about 1)."""


def is_xdist_worker(config: pytest.Config) -> bool:
    """Whether this process is one of pytest-xdist's workers (they collect; the controller
    only schedules what they collected)."""
    return hasattr(config, "workerinput")


def longest_modules_first(items: list[pytest.Item]) -> None:
    """Sort `items` in place by their module's seconds, the longest first; a stable sort, so
    the tests of a module keep their order, and so do the unlisted modules."""
    items.sort(key=lambda item: -MODULE_SECONDS.get(item.nodeid.split("::", 1)[0], 0.0))
