"""`relay companies ...`, `relay webhooks ...` and `relay serve`'s bind-address rule, run as a
user runs them against the suite's PostgreSQL (or an embedded SQLite): the commands by
`relay.cli.main` in the test process, `relay serve` as a real process."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.schema import platform_streams, webhook_events, webhooks
from relay.errors import StartupError
from relay.registry import writes
from relay.registry.cache import load_snapshot
from relay.registry.filters import parse_filters
from relay.runtime.service import check_bind_address
from tests.relay.conftest import EVENT, platform_columns
from tests.support.environment import relay_env
from tests.support.relay_command import CliResult, InProcessCli, run_relay
from tests.support.relay_launcher import RelayProcess
from tests.support.waiting import eventually

HOOK = "https://hooks.example.com/calls"
FILTER = '[{"field_path": "callHistory.campaign.id", "operator": "equals", "value": 201074}]'


class Relay:
    """`relay` commands run in the test process; a traceback in their output fails the test."""

    def __init__(self, cli: InProcessCli) -> None:
        self.cli = cli

    def __call__(self, env: dict[str, str], *args: str) -> CliResult:
        result = self.cli(env, *args)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def each(
        self, env: dict[str, str] | list[dict[str, str]], *commands: tuple[str, ...]
    ) -> list[CliResult]:
        """Independent commands in turn; `env` is shared, or one per command."""
        envs = env if isinstance(env, list) else [env] * len(commands)
        return [self(one_env, *args) for one_env, args in zip(envs, commands, strict=True)]


@pytest.fixture
def relay(relay_cli: InProcessCli) -> Relay:
    return Relay(relay_cli)


@pytest.fixture
def env(pg_url: str, pg_engine: Engine, spool_path: Path) -> dict[str, str]:
    return relay_env(database_url=pg_url, spool_path=spool_path)


def embedded(directory: Path, **settings: object) -> dict[str, str]:
    """The embedded default in a private directory: SQLite database and spool, no PostgreSQL."""
    return relay_env(
        database_url=f"sqlite:///{directory / 'relay.db'}",
        spool_path=directory / "spool.db",
        **settings,
    )


def add_company(relay: Relay, env: dict[str, str], name: str = "Acme Cobrancas") -> uuid.UUID:
    result = relay(env, "companies", "add", name)
    assert result.returncode == 0, result.stderr
    company_id, printed_name = result.stdout.strip().split("\t")
    assert printed_name == name
    return uuid.UUID(company_id)


def add_company_row(engine: Engine, name: str = "Acme Cobrancas") -> uuid.UUID:
    """Setup through the library, so that each test runs only the commands it is about."""
    return writes.add_company(engine, name).id


def add_webhook_row(engine: Engine, company: uuid.UUID, url: str) -> uuid.UUID:
    return writes.add_webhook(
        engine, company_id=company, url=url, event=EVENT, filters=(), secret=None
    ).id


def webhook_rows(engine: Engine) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(webhooks)).all())


def assert_refused(result: CliResult, *phrases: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


# -- companies ----------------------------------------------------------------------------------


def test_companies_add_prints_the_id_and_list_shows_them(relay: Relay, env: dict[str, str]) -> None:
    added = relay.each(env, ("companies", "add", "Acme Cobrancas"), ("companies", "add", "Beta"))
    expected = set()
    for result in added:
        assert result.returncode == 0, result.stderr
        company_id, name = result.stdout.strip().split("\t")
        expected.add(f"{uuid.UUID(company_id)}\tactive\t-\t{name}")

    result = relay(env, "companies", "list")

    assert result.returncode == 0, result.stderr
    assert set(result.stdout.splitlines()) == expected
    assert {line.split("\t")[3] for line in expected} == {"Acme Cobrancas", "Beta"}


def test_a_company_name_must_be_1_to_255_characters(relay: Relay, env: dict[str, str]) -> None:
    results = relay.each(env, ("companies", "add", "   "), ("companies", "add", "x" * 256))
    for result in results:
        assert_refused(result, "company name must be 1 to 255")
    listing = relay(env, "companies", "list")
    assert (listing.returncode, listing.stdout) == (0, "")


def test_a_company_with_a_platform_connection(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    """The token is stored and never printed back; the list shows the cluster and, once a
    relay has tried to open the stream, what the stream is doing and why."""
    added = relay(
        env, "companies", "add", "Acme", "--platform-token", "tok-secret-1", "--cluster", "cluster2"
    )
    assert added.returncode == 0, added.stderr
    company = uuid.UUID(added.stdout.split("\t")[0])
    plain = add_company(relay, env, "Beta")

    listed = relay(env, "companies", "list").stdout.splitlines()

    assert set(listed) == {f"{company}\tactive\tcluster2\tAcme", f"{plain}\tactive\t-\tBeta"}
    assert platform_columns(pg_engine, company) == ("tok-secret-1", "cluster2")

    with pg_engine.begin() as conn:
        conn.execute(
            platform_streams.insert().values(
                company_id=company,
                state="refused",
                detail="invalid\ttoken",
                holder="relay-a",
                since=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        )
    edited = relay(env, "companies", "edit", str(company), "--cluster", "cluster1")
    assert edited.stdout == f"{company}\tactive\tcluster1 refused: invalid token\tAcme\n"
    token_changed = relay(
        env, "companies", "edit", str(company), "--platform-token", "tok-second-2"
    )
    assert "tok-second-2" not in token_changed.stdout + token_changed.stderr
    assert platform_columns(pg_engine, company) == ("tok-second-2", "cluster1")
    given = relay(env, "companies", "edit", str(plain), "--platform-token", "tok-third-3")
    assert given.stdout == f"{plain}\tactive\tcluster1\tBeta\n"  # cluster1 unless told

    removed = relay(env, "companies", "edit", str(company), "--no-platform")

    assert removed.stdout == f"{company}\tactive\t-\tAcme\n"
    assert platform_columns(pg_engine, company) == (None, None)
    for args, phrase in (
        (("add", "Gamma", "--cluster", "cluster2"), "a cluster needs a platform token"),
        (("edit", str(company), "--cluster", "cluster2"), "a cluster needs a platform token"),
        (("edit", str(plain), "--platform-token", "two words here"), "without spaces"),
        (("edit", str(plain), "--platform-token", "short"), "must be 8 to 1000"),
        (("edit", str(plain), "--no-platform", "--cluster", "cluster2"), "takes no token"),
        (("add", "Gamma", "--platform-token", "tok-gamma-1", "--cluster", "c9"), "invalid choice"),
    ):
        assert_refused(relay(env, "companies", *args), phrase)
    assert len(relay(env, "companies", "list").stdout.splitlines()) == 2


def test_events_list_and_add(relay: Relay, env: dict[str, str], event_catalog: None) -> None:
    added = relay(
        env, "events", "add", "call-was-recorded", "--display-name", "Recorded", "--id-path", "a.b"
    )
    assert added.stdout == "event call-was-recorded added\n"

    listed = relay(env, "events", "list").stdout.splitlines()

    assert "call-was-recorded\ta.b\tRecorded" in listed
    assert "call-history-was-created\tcallHistory._id\tCall history was created" in listed
    assert "agent-status-changed\t-\tAgent status changed" in listed
    assert_refused(relay(env, "events", "add", "call-was-recorded"), "exists already")
    assert_refused(relay(env, "events", "add", "x", "--id-path", "a..b"), "id path must be")
    assert_refused(relay(env, "events", "add", "bad name"), "event name must be")


# -- webhooks add / list ------------------------------------------------------------------------


def test_webhooks_add_with_a_filter_and_a_secret(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    company = add_company_row(pg_engine)
    add = ("webhooks", "add", "--company", str(company), "--url", HOOK, "--event", EVENT)

    result, again = relay.each(env, (*add, "--filter", FILTER, "--secret"), (*add, "--secret"))

    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    webhook_id, url, event = first.split("\t")
    assert (url, event) == (HOOK, EVENT)
    assert second.startswith("signing secret (shown once")
    secret = second.rsplit(" ", 1)[1]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    assert again.returncode == 0, again.stderr
    assert again.stdout.split()[-1].startswith("whsec_")
    assert again.stdout.split()[-1] != secret  # every webhook gets its own secret

    row = next(r for r in webhook_rows(pg_engine) if str(r.id) == webhook_id)
    assert (row.company_id, row.url, row.secret, row.status) == (company, HOOK, secret, "active")
    subscription = load_snapshot(pg_engine).webhooks[uuid.UUID(webhook_id)]
    assert subscription.secret == secret
    assert subscription.filters == parse_filters(json.loads(FILTER))

    listing = relay(env, "webhooks", "list")

    assert listing.returncode == 0, listing.stderr
    assert f"{webhook_id}\t{company}\tactive\tsigned\t{EVENT}\t{HOOK}" in listing.stdout
    assert len(listing.stdout.splitlines()) == 2
    assert "whsec_" not in listing.stdout + listing.stderr


def test_webhooks_add_without_secret_or_filter(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    company = add_company_row(pg_engine)
    other = add_company_row(pg_engine, "Beta Telecom")
    add_webhook_row(pg_engine, other, HOOK)

    result = relay(
        env, "webhooks", "add", "--company", str(company), "--url", "http://127.0.0.1:9/x",
        "--event", EVENT,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert "secret" not in result.stdout
    webhook_id = result.stdout.split("\t")[0]
    only_mine, everyone = relay.each(
        env, ("webhooks", "list", "--company", str(company)), ("webhooks", "list")
    )
    assert only_mine.stdout.splitlines() == [
        f"{webhook_id}\t{company}\tactive\tunsigned\t{EVENT}\thttp://127.0.0.1:9/x"
    ]
    assert len(everyone.stdout.splitlines()) == 2
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(webhook_events.c.filters)).scalars().all() == [[], []]


INVALID_FILTERS: list[tuple[str, tuple[str, ...]]] = [
    ("{not json", ("--filter is not valid JSON",)),
    (
        '[{"field_path": "a", "operator": "eq", "value": 1}]',
        ("filters[0].operator", "unknown operator 'eq'"),
    ),
    ('{"field_path": "a", "operator": "equals", "value": 1}', ("filters", "array")),
    (
        '[{"field_path": "a", "operator": "equals", "value": 1},'
        ' {"field_path": "a..b", "operator": "equals", "value": 1}]',
        ("filters[1].field_path", "a..b"),
    ),
]


def test_an_invalid_filter_exits_2_naming_the_problem_and_saves_nothing(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    company = add_company_row(pg_engine)
    add = ("webhooks", "add", "--company", str(company), "--url", HOOK, "--event", EVENT)

    results = relay.each(env, *[(*add, "--filter", text) for text, _ in INVALID_FILTERS])

    for result, (_, phrases) in zip(results, INVALID_FILTERS, strict=True):
        assert_refused(result, "usage: relay webhooks add", *phrases)
    assert webhook_rows(pg_engine) == []


def test_unknown_company_unknown_event_or_a_non_http_url_exit_2_and_save_nothing(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    company, nobody = add_company_row(pg_engine), uuid.uuid4()
    cases: list[tuple[tuple[str, str, str], str]] = [
        ((str(nobody), HOOK, EVENT), f"unknown company {nobody}"),
        (
            (str(company), HOOK, "no-such-event"),
            "unknown event 'no-such-event' (`relay events list`",
        ),
        ((str(company), "ftp://hooks.example.com/x", EVENT), "absolute http(s) URL"),
        ((str(company), "hooks.example.com/x", EVENT), "absolute http(s) URL"),
    ]

    results = relay.each(
        env,
        *[
            ("webhooks", "add", "--company", c, "--url", url, "--event", event)
            for (c, url, event), _ in cases
        ],
    )

    for result, (_, phrase) in zip(results, cases, strict=True):
        assert_refused(result, "relay: error: ", phrase)
    assert webhook_rows(pg_engine) == []


def test_an_unparsable_url_exits_2_without_a_traceback(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    company = add_company_row(pg_engine)
    result = relay(
        env, "webhooks", "add", "--company", str(company), "--url", "http://[::1", "--event", EVENT
    )
    assert_refused(result, "relay: error: ", "URL")


def test_a_url_the_http_client_cannot_use_is_refused_when_saved(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    company = add_company_row(pg_engine)
    add = ("webhooks", "add", "--company", str(company), "--event", EVENT, "--url")
    for result in relay.each(env, (*add, "http://127.0.0.1:abc/hook"), (*add, "http://xn--/hook")):
        assert_refused(result, "relay: error: ", "URL")
    assert webhook_rows(pg_engine) == []


# -- webhooks disable ---------------------------------------------------------------------------


def test_webhooks_disable(relay: Relay, env: dict[str, str], pg_engine: Engine) -> None:
    company = add_company_row(pg_engine)
    webhook_id = add_webhook_row(pg_engine, company, HOOK)
    kept = add_webhook_row(pg_engine, company, HOOK + "/kept")

    result = relay(env, "webhooks", "disable", str(webhook_id))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"webhook {webhook_id} disabled"
    listing = relay(env, "webhooks", "list").stdout
    assert f"{webhook_id}\t{company}\tdisabled\t" in listing
    assert f"{kept}\t{company}\tactive\t" in listing
    assert set(load_snapshot(pg_engine).webhooks) == {kept}


def test_unknown_webhooks_and_bad_uuid_arguments_exit_2(relay: Relay, env: dict[str, str]) -> None:
    webhook_id = uuid.uuid4()
    unknown, *bad_uuids = relay.each(
        env,
        ("webhooks", "disable", str(webhook_id)),
        ("webhooks", "disable", "not-a-uuid"),
        ("webhooks", "list", "--company", "12345"),
        ("webhooks", "add", "--company", "acme", "--url", HOOK, "--event", EVENT),
    )
    assert_refused(unknown, f"unknown webhook {webhook_id}")
    for result in bad_uuids:
        assert_refused(result, "usage: relay", "not a UUID")


# -- webhooks edit | enable | delete | rotate-secret, companies edit | delete --------------------


def test_webhooks_edit_changes_url_name_events_and_filters(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    company = add_company_row(pg_engine)
    webhook_id = add_webhook_row(pg_engine, company, HOOK)

    moved = relay(env, "webhooks", "edit", str(webhook_id), "--url", HOOK + "/v2", "--name", "CRM")
    filtered = relay(env, "webhooks", "edit", str(webhook_id), "--filter", FILTER)

    assert moved.stdout == f"{webhook_id}\t{company}\tactive\tunsigned\t{EVENT}\t{HOOK}/v2\n"
    assert filtered.returncode == 0, filtered.stderr
    subscription = load_snapshot(pg_engine).webhooks[webhook_id]
    assert subscription.url == HOOK + "/v2"
    assert subscription.filters == parse_filters(json.loads(FILTER))
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(webhooks.c.name)).scalar() == "CRM"
    unnamed = relay(env, "webhooks", "edit", str(webhook_id), "--name", "")
    assert unnamed.returncode == 0, unnamed.stderr
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(webhooks.c.name)).scalar() is None


def test_webhooks_edit_refuses_what_add_refuses(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    company = add_company_row(pg_engine)
    webhook_id = str(add_webhook_row(pg_engine, company, HOOK))
    results = relay.each(
        env,
        ("webhooks", "edit", webhook_id, "--url", "ftp://hooks.example.com/x"),
        ("webhooks", "edit", webhook_id, "--event", "no-such-event"),
        ("webhooks", "edit", webhook_id, "--filter", "[1]"),
        ("webhooks", "edit", webhook_id),
        ("webhooks", "edit", str(uuid.uuid4()), "--url", HOOK),
    )
    phrases = [
        "absolute http(s) URL",
        "unknown event 'no-such-event'",
        "filters[0]",
        "nothing to change",
        "unknown webhook",
    ]
    for result, phrase in zip(results, phrases, strict=True):
        assert_refused(result, phrase)
    assert load_snapshot(pg_engine).webhooks[uuid.UUID(webhook_id)].url == HOOK


def test_webhooks_enable_delete_and_rotate_secret(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    company = add_company_row(pg_engine)
    webhook_id = add_webhook_row(pg_engine, company, HOOK)
    relay(env, "webhooks", "disable", str(webhook_id))

    enabled = relay(env, "webhooks", "enable", str(webhook_id))
    rotated = relay(env, "webhooks", "rotate-secret", str(webhook_id))

    assert enabled.stdout == f"webhook {webhook_id} enabled\n"
    secret = rotated.stdout.strip().rsplit(" ", 1)[1]
    assert rotated.stdout.startswith("signing secret (shown once")
    assert load_snapshot(pg_engine).webhooks[webhook_id].secret == secret
    assert f"{webhook_id}\t{company}\tactive\tsigned\t" in relay(env, "webhooks", "list").stdout

    deleted = relay(env, "webhooks", "delete", str(webhook_id))

    assert deleted.stdout == f"webhook {webhook_id} deleted\n"
    assert relay(env, "webhooks", "list").stdout == ""
    assert webhook_rows(pg_engine)[0].deleted is True  # kept for the execution log's rows
    for command in ("enable", "delete", "rotate-secret"):
        assert_refused(relay(env, "webhooks", command, str(webhook_id)), "unknown webhook")


def test_companies_edit_and_delete(relay: Relay, env: dict[str, str], pg_engine: Engine) -> None:
    company = add_company_row(pg_engine)
    add_webhook_row(pg_engine, company, HOOK)

    renamed = relay(env, "companies", "edit", str(company), "--name", "Acme 2")
    disabled = relay(env, "companies", "edit", str(company), "--status", "disabled")

    assert renamed.stdout == f"{company}\tactive\t-\tAcme 2\n"
    assert disabled.stdout == f"{company}\tdisabled\t-\tAcme 2\n"
    assert load_snapshot(pg_engine).webhooks == {}  # a disabled company gets nothing
    assert_refused(relay(env, "companies", "edit", str(company)), "nothing to change")
    assert_refused(relay(env, "companies", "edit", str(company), "--status", "x"), "invalid choice")

    deleted = relay(env, "companies", "delete", str(company))

    assert deleted.stdout == f"company {company} deleted\n"
    assert relay(env, "companies", "list").stdout == ""
    assert relay(env, "webhooks", "list").stdout == ""
    assert_refused(relay(env, "companies", "delete", str(company)), "unknown company")


def test_the_commands_work_on_the_embedded_database(relay: Relay, tmp_path: Path) -> None:
    migrated, unmigrated = embedded(tmp_path / "migrated"), embedded(tmp_path / "unmigrated")
    refused, done = relay.each([unmigrated, migrated], ("companies", "list"), ("migrate",))
    assert_refused(refused, "has `relay migrate` been run?")
    assert done.returncode == 0, done.stderr
    company = add_company(relay, migrated)
    added = relay(
        migrated, "webhooks", "add", "--company", str(company), "--url", HOOK,
        "--event", EVENT, "--filter", FILTER, "--secret",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listing = relay(migrated, "webhooks", "list")
    assert f"\t{company}\tactive\tsigned\t{EVENT}\t{HOOK}" in listing.stdout


# -- relay serve: no intake token means loopback only -------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    check_bind_address(host, token_configured=False)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "192.168.10.20", "10.0.0.1", "relay.example.com", ""]
)
def test_any_other_address_without_a_token_refuses_to_start(host: str) -> None:
    with pytest.raises(StartupError, match="RELAY_INTAKE_TOKEN"):
        check_bind_address(host, token_configured=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.10.20", "127.0.0.1"])
def test_with_a_token_any_address_is_fine(host: str) -> None:
    check_bind_address(host, token_configured=True)


def test_serve_on_a_public_address_without_a_token_exits_2(tmp_path: Path) -> None:
    """Real processes: were the rule broken, an in-process `serve` would serve for ever."""
    flag = run_relay(embedded(tmp_path / "flag"), "serve", "--host", "0.0.0.0", "--port", "0")
    variable = run_relay(embedded(tmp_path / "variable", host="0.0.0.0"), "serve", "--port", "0")

    for result in (flag, variable):
        assert result.returncode == 2, result.stderr
        assert (
            "relay: error: refusing to listen on 0.0.0.0 without RELAY_INTAKE_TOKEN"
            in result.stderr
        )
        assert "127.0.0.1" in result.stderr  # and says what to do instead


def test_serve_on_loopback_without_a_token_says_so(serving_relay: RelayProcess) -> None:
    """The suite's shared `relay serve` (no token, the default 127.0.0.1); at the end of the
    session it is SIGTERMed and must exit 0."""
    warning = "RELAY_INTAKE_TOKEN is not set: serving on loopback (127.0.0.1) only"
    assert eventually(lambda: warning in serving_relay.log_text()), serving_relay.log_text()
