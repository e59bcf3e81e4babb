"""`relay import socket2webhook --from URL`, run as a user runs it: from a socket2webhook
database built by its own migrations (tests/support/socket2webhook_db.py) and filled with
realistic rows, into the suite's PostgreSQL registry; and the planning rules on their own."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.db.schema import companies, events, webhook_events, webhooks
from relay.registry import listing
from relay.registry.filters import matches_all, parse_filters
from relay.registry.socket2webhook import (
    Action,
    Here,
    Source,
    SourceCompany,
    SourceSubscription,
    SourceWebhook,
    plan_import,
)
from relay.registry.socket2webhook_filters import socket2webhook_passes
from tests.support.environment import relay_env
from tests.support.pg_cluster import PgCluster
from tests.support.ports import reserved_port
from tests.support.relay_command import CliResult, InProcessCli
from tests.support.relay_data import TEST_DATABASE, sample_event
from tests.support.socket2webhook_db import (
    create_socket2webhook_database,
    schema_parts,
    their_git_dir,
)

SOURCE_DB = "socket2webhook_import"
PASSWORD = "Sup4base-s3cret-pw"  # the server trusts loopback: it is sent, never checked

ACME = uuid.UUID("7c041bce-e6ac-4b7c-af5a-43db5c6afb42")
GAMA = uuid.UUID("696bdbc6-4890-4849-b780-b5fa710688ad")
DELTA = uuid.UUID("dd15eff3-593e-42f7-810e-0576916b86b1")
EPSILON = uuid.UUID("804c3713-4219-4ca1-9b59-02b03aca2e32")
ZETA = uuid.UUID("d5911994-857a-4261-a1e6-62e6b1ee9583")
CRM = uuid.UUID("cad01e7e-44ea-410a-8eab-9bf4eefdface")
BI = uuid.UUID("8308f3a3-746f-41b6-8807-b92a33a60110")
NO_TEST_LISTS = uuid.UUID("19db7347-0703-4a30-ad75-f11d3d3edb9a")
PAUSED = uuid.UUID("ea8ae1cd-bbb7-4e7f-92cb-f53b7b2b328a")
MOBILES_ONLY = uuid.UUID("d37e5128-fa80-4b9a-9b09-07b315e214ae")
RECORDINGS = uuid.UUID("6b8727e4-10fd-459d-b5ea-a25b803c53a4")
# Their webhooks that must not come over, and why (a word of the printed reason).
NOT_IMPORTED = {
    uuid.UUID("400fc732-fbbd-407a-8501-3fda2c359de1"): "deleted in socket2webhook",
    uuid.UUID("257257a0-badf-4ec3-9d52-edd6c36423bb"): "subscribed to no event",
    uuid.UUID("c7ba2a73-bacd-47da-88a0-ea40814304e8"): "must be an absolute http(s) URL",
    uuid.UUID("d866cc6a-1843-4fd7-8794-1e368031850c"): "its company is not imported",
}
DISABLED = {PAUSED: "paused", MOBILES_ONLY: "starts_with", NO_TEST_LISTS: "not_contains"}
UNKNOWN_EVENT = "mailing-list-was-imported"


@pytest.fixture(scope="module")
def source(pg_cluster: PgCluster) -> Iterator[str]:
    """The socket2webhook database's URL as a user gives it: postgresql://, a password."""
    create_socket2webhook_database(pg_cluster, SOURCE_DB)
    yield f"postgresql://postgres:{PASSWORD}@{pg_cluster.host}:{pg_cluster.port}/{SOURCE_DB}"
    pg_cluster.drop_database(SOURCE_DB)


@pytest.fixture
def env(pg_url: str, pg_engine: Engine, event_catalog: None, spool_path: Path) -> dict[str, str]:
    return relay_env(database_url=pg_url, spool_path=spool_path)


def run(cli: InProcessCli, env: dict[str, str], source: str, *more: str) -> CliResult:
    result = cli(env, "import", "socket2webhook", "--from", source, *more)
    assert "Traceback" not in result.stderr, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    return result


def registry_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the registry's tables, every column, in a stable order."""
    with engine.connect() as conn:
        return {
            table.name: sorted(
                (tuple(json.dumps(v, sort_keys=True, default=str) for v in row))
                for row in conn.execute(sa.select(table))
            )
            for table in (companies, webhooks, webhook_events, events)
        }


def their_rows(cluster: PgCluster, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(cluster.conninfo(SOURCE_DB)) as conn:
        return conn.execute(query.encode()).fetchall()


def lines_about(result: CliResult, item: uuid.UUID, prefix: str = "") -> list[str]:
    return [
        line for line in result.stdout.splitlines() if str(item) in line and line.startswith(prefix)
    ]


# -- against a socket2webhook database ----------------------------------------------------------


def test_companies_webhooks_and_filters_come_over_as_they_were(
    relay_cli: InProcessCli, env: dict[str, str], source: str, pg_engine: Engine,
    pg_cluster: PgCluster,
) -> None:  # fmt: skip
    result = run(relay_cli, env, source)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""

    # Companies: the same ids, the token as platform token, the cluster (NULL: cluster1),
    # inactive ones disabled, the deleted one left behind.
    theirs = their_rows(
        pg_cluster,
        "SELECT id, name, api_token, cluster_type, status FROM companies WHERE NOT deleted",
    )
    with pg_engine.connect() as conn:
        ours = {row.id: row for row in conn.execute(sa.select(companies))}
    assert set(ours) == {row[0] for row in theirs}
    for company_id, name, token, cluster, status in theirs:
        row = ours[company_id]
        assert (row.name, row.platform_token) == (name, token)
        assert row.cluster == (None if token is None else cluster or "cluster1")
        assert row.status == ("active" if status == "active" else "disabled")
    assert ours[DELTA].cluster == "cluster1" and ours[EPSILON].platform_token is None
    assert ours[GAMA].status == "disabled" and ZETA not in ours

    # Webhooks: the same ids, company, URL, name and events; disabled where they did not
    # deliver or where a filter would let more through here.
    subscribed: dict[uuid.UUID, set[str]] = {}
    for webhook_id, event in their_rows(
        pg_cluster,
        "SELECT we.webhook_id, e.name FROM webhook_events we JOIN events e ON e.id = we.event_id",
    ):
        subscribed.setdefault(webhook_id, set()).add(event)
    theirs = their_rows(pg_cluster, "SELECT id, company_id, name, url FROM webhooks")
    with pg_engine.connect() as conn:
        imported = {
            row.id: listing.webhook(conn, row.id) for row in conn.execute(sa.select(webhooks))
        }
    assert set(imported) == {row[0] for row in theirs} - set(NOT_IMPORTED)
    for webhook_id, company_id, name, url in theirs:
        if webhook_id in NOT_IMPORTED:
            continue
        webhook = imported[webhook_id]
        assert webhook is not None
        assert (webhook.company_id, webhook.name, webhook.url) == (company_id, name, url)
        assert set(webhook.events) == subscribed[webhook_id]
        assert webhook.enabled is (webhook_id not in DISABLED), webhook_id
        assert not webhook.has_secret

    # Filters: converted, the description gone, numbers as text made numbers.
    crm, bi, mobiles = imported[CRM], imported[BI], imported[MOBILES_ONLY]
    assert crm is not None and bi is not None and mobiles is not None
    assert crm.filters["call-history-was-created"] == [
        {"field_path": "callHistory.status", "operator": "equals", "value": 7},
        {"field_path": "callHistory.campaign.id", "operator": "equals", "value": 201074},
        {"field_path": "callHistory.mailing_data.uf", "operator": "equals", "value": "AL"},
    ]
    assert crm.filters["call-was-connected"] == []
    assert bi.filters["message-ack-whatsapp"] == [
        {"field_path": "message", "operator": "contains", "value": "ack"},
        {"field_path": "message.ack", "operator": "not_equals", "value": "read"},
    ]
    assert mobiles.filters["call-history-was-created"] == []  # starts_with: not carried over

    # The event type we did not know is in the catalog, with their display name.
    with pg_engine.connect() as conn:
        display = conn.execute(
            sa.select(events.c.display_name).where(events.c.name == UNKNOWN_EVENT)
        ).scalar_one()
    assert display == "Lista de Mailing Importada"

    # Every item not carried over or changed has its line, with the reason.
    for webhook_id, reason in NOT_IMPORTED.items():
        assert any(reason in line for line in lines_about(result, webhook_id, "skipped: ")), reason
    for webhook_id, reason in DISABLED.items():
        assert any(reason in line for line in lines_about(result, webhook_id)), reason
    assert "deleted in socket2webhook" in lines_about(result, ZETA, "skipped: ")[0]
    assert "disabled" in lines_about(result, GAMA, "changed: ")[0]
    assert "no api_token" in lines_about(result, EPSILON, "changed: ")[0]
    assert "cluster_type is NULL" in lines_about(result, DELTA, "changed: ")[0]
    assert f"event type {UNKNOWN_EVENT}" in result.stdout
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 8
    assert any(
        "callHistory.campaign.id equals \"201074\"" in w and "became callHistory.campaign.id "
        "equals 201074; now blocked: text \"201074\"" in w and "Acme Cobrancas" in w
        and "CRM - ligações finalizadas" in w and "event call-history-was-created" in w
        for w in warnings
    )  # fmt: skip
    assert result.stdout.splitlines()[-5:] == [
        "summary",
        "  companies    added 5 (1 disabled), already here 0, skipped 1",
        "  webhooks     added 10 (3 disabled), already here 0, skipped 4",
        "  event types  added 1",
        "  filters      converted 11 (8 with warnings, 1 letting more through), not carried over 1",
    ]
    assert "3 execution log rows stay there" in result.stdout.splitlines()[0]
    assert f"postgresql://postgres:***@{pg_cluster.host}" in result.stdout.splitlines()[0]


def _with(body: dict[str, Any], changes: dict[str, object]) -> dict[str, Any]:
    """A copy of `body` with dotted paths set (or removed, for None-as-missing `...`)."""
    changed = copy.deepcopy(body)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = changed
        for key in parents:
            node = node[key]
        if value is Ellipsis:
            node.pop(last, None)
        else:
            node[last] = value
    return changed


CALL = sample_event()
ACK = {
    "message": {
        "id": "wamid.HBgNNTU4Mjk4ODYyODQyNRUCABEYEjBF",
        "ack": "read",
        "number": "5582988628425",
        "from": "558230041234",
        "to": "5582988628425",
    }
}
EVENTS: dict[str, list[dict[str, Any]]] = {
    "call-history-was-created": [
        _with(CALL, changes)
        for changes in [
            {},
            {"callHistory.status": 3},
            {"callHistory.campaign.id": 195452},
            {"callHistory.mailing_data.uf": "SP"},
            {"callHistory.mailing_data.uf": ...},
            {"callHistory.qualification.name": "Sem acordo"},
            {"callHistory.qualification.name": "Recusou proposta"},
            {"callHistory.speaking_time": 45, "callHistory.recorded": False},
            {"callHistory.number": "5511999998888"},
            {"callHistory.list.name": "Lote teste 2026-11"},
            {"callHistory.list.name": "Lote Teste"},
            {"callHistory.amd_status": "machine", "callHistory.phone_type": "landline"},
            {"callHistory.amd_status": ...},
        ]
    ],
    "message-ack-whatsapp": [
        _with(ACK, changes) for changes in [{}, {"message.ack": "device"}, {"message.ack": ...}]
    ],
}


def test_imported_filters_pass_the_events_socket2webhook_passed(
    relay_cli: InProcessCli, env: dict[str, str], source: str, pg_engine: Engine,
    pg_cluster: PgCluster,
) -> None:  # fmt: skip
    """The sample call and variants of it through each subscription, theirs (as server.js
    evaluates them) and ours: the same answer, except where the import printed a warning
    for that filter; and where ours would deliver what theirs did not, the webhook is
    disabled."""
    result = run(relay_cli, env, source)
    stored = their_rows(
        pg_cluster,
        "SELECT we.webhook_id, e.name, we.filters FROM webhook_events we "
        "JOIN events e ON e.id = we.event_id WHERE we.filters <> '[]'::jsonb",
    )
    differences = []
    compared = 0
    for webhook_id, event, filters in stored:
        with pg_engine.connect() as conn:
            ours = listing.webhook(conn, webhook_id)
        if ours is None or event not in EVENTS:
            continue
        converted = parse_filters(ours.filters[event])
        for body in EVENTS[event]:
            compared += 1
            theirs_pass = socket2webhook_passes(filters, body)
            ours_pass = matches_all(converted, body)
            if theirs_pass != ours_pass:
                differences.append((ours, event, theirs_pass))
    assert compared == 94  # 7 filtered call subscriptions x 13 calls, 1 ack x 3 acks
    for webhook, event, theirs_pass in differences:
        said = [
            line for line in lines_about(result, webhook.id) if f"event {event}, filter" in line
        ]
        assert said, f"{webhook.name}: a silent difference on {event}"
        if not theirs_pass:  # ours delivers more: never on an enabled webhook
            assert not webhook.enabled, webhook.name
    # What the realistic events show: case ("Acordo fechado" contains "acordo"), a missing
    # amd_status (equals "null" passed it), and, on disabled webhooks, not_contains "teste"
    # against "Lote Teste" and the starts_with filter left out.
    assert {(w.name, theirs) for w, _, theirs in differences} == {
        ("Acordos", True),
        ("Gravações", True),
        ("Exclui listas de teste", False),
        ("Somente celulares", False),
    }


def their_tables(cluster: PgCluster) -> list[list[tuple[Any, ...]]]:
    return [
        sorted(map(str, their_rows(cluster, f"SELECT * FROM {table}")))
        for table in ("companies", "webhooks", "webhook_events", "events", "webhook_executions")
    ]


def test_running_it_again_changes_nothing(
    relay_cli: InProcessCli, env: dict[str, str], source: str, pg_engine: Engine,
    pg_cluster: PgCluster,
) -> None:  # fmt: skip
    """Here nothing changes the second time; there, nothing ever (it reads read-only)."""
    theirs = their_tables(pg_cluster)
    assert run(relay_cli, env, source).returncode == 0
    before = registry_rows(pg_engine)
    again = run(relay_cli, env, source)
    assert again.returncode == 0
    assert registry_rows(pg_engine) == before
    assert their_tables(pg_cluster) == theirs
    assert again.stdout.splitlines()[-5:-1] == [
        "summary",
        "  companies    added 0 (0 disabled), already here 5, skipped 1",
        "  webhooks     added 0 (0 disabled), already here 10, skipped 4",
        "  event types  added 0",
    ]
    assert not [
        line for line in again.stdout.splitlines() if line.startswith(("warning", "changed"))
    ]


def test_a_dry_run_writes_nothing_and_says_what_the_import_does(
    relay_cli: InProcessCli, env: dict[str, str], source: str, pg_engine: Engine
) -> None:
    before = registry_rows(pg_engine)
    dry = run(relay_cli, env, source, "--dry-run")
    assert dry.returncode == 0
    assert registry_rows(pg_engine) == before
    assert (
        dry.stdout.splitlines()[1]
        == "dry run: nothing is written; this is what the import would do"
    )
    real = run(relay_cli, env, source)
    assert [
        line.replace("would be added", "added").replace("to add", "added").replace(" (dry run)", "")
        for line in dry.stdout.splitlines()
        if not line.startswith("dry run:")
    ] == real.stdout.splitlines()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (and no other test worker will listen on meanwhile)."""
    return reserved_port()


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("garbage", "--from is not a database URL"),
        ("mysql", "--from must be a PostgreSQL URL"),
        ("unreachable", "cannot read the socket2webhook database at postgresql://postgres:***@"),
        ("the relay's own", "is not a socket2webhook database: it has no companies.api_token"),
    ],
)
def test_a_source_it_cannot_read_exits_2_with_one_line_and_writes_nothing(
    relay_cli: InProcessCli, env: dict[str, str], pg_engine: Engine, pg_cluster: PgCluster,
    closed_port: int, kind: str, expected: str,
) -> None:  # fmt: skip
    url = {
        "garbage": f"postgresql//postgres:{PASSWORD}@nowhere",
        "mysql": f"mysql://root:{PASSWORD}@127.0.0.1/socket2webhook",
        "unreachable": f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed_port}/postgres",
        "the relay's own": f"postgresql://postgres:{PASSWORD}@{pg_cluster.host}:"
        f"{pg_cluster.port}/{TEST_DATABASE}",
    }[kind]
    before = registry_rows(pg_engine)
    result = run(relay_cli, env, url)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("relay: error: ") and expected in result.stderr
    assert registry_rows(pg_engine) == before


@pytest.mark.skipif(their_git_dir() is None, reason="socket2webhook's repository is not on disk")
def test_our_schema_is_what_their_migrations_make(pg_cluster: PgCluster) -> None:
    """Part 2 of tests/support/socket2webhook_schema.sql, our rendering of their migration
    files, gives the database their files give: columns, defaults, constraints, indexes."""

    def catalog(theirs: bool) -> dict[str, list[tuple[Any, ...]]]:
        name = f"socket2webhook_{'theirs' if theirs else 'ours'}"
        create_socket2webhook_database(pg_cluster, name, theirs=theirs, rows=False)
        queries = {
            "columns": "SELECT table_name, column_name, data_type, character_maximum_length, "
            "is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = 'public'",
            "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
            "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
            "events": "SELECT name, display_name FROM events",
        }
        try:
            with psycopg.connect(pg_cluster.conninfo(name)) as conn:
                return {k: sorted(conn.execute(q.encode()).fetchall()) for k, q in queries.items()}
        finally:
            pg_cluster.drop_database(name)

    assert schema_parts()[1].count("-- add_") >= 5
    assert catalog(theirs=False) == catalog(theirs=True)


# -- the planning rules, without a database ------------------------------------------------------

COMPANY = SourceCompany(uuid.uuid4(), "Acme", "tok123", "cluster2", "active")
HOOK = "https://hooks.example.com/3c"


def webhook(**fields: Any) -> SourceWebhook:
    defaults: dict[str, Any] = {
        "id": uuid.uuid4(),
        "company_id": COMPANY.id,
        "name": "CRM",
        "url": HOOK,
        "status": "active",
        "subscriptions": (SourceSubscription("call-history-was-created", None, []),),
    }
    return SourceWebhook(**(defaults | fields))


def plan(*hooks: SourceWebhook, here: Here | None = None, company: SourceCompany = COMPANY) -> Any:
    source = Source("postgresql://x", (company,), hooks)
    known = here or Here(events=frozenset({"call-history-was-created", "call-was-connected"}))
    return plan_import(source, known)


def test_a_company_whose_token_another_company_here_has_is_skipped() -> None:
    other = uuid.uuid4()
    planned = plan(here=Here(tokens={"tok123": other}))
    assert planned.companies[0].action is Action.SKIP
    assert str(other) in planned.companies[0].notes[0]
    assert planned.webhooks == () or planned.webhooks[0].action is Action.SKIP


def test_what_was_deleted_here_after_an_import_stays_deleted() -> None:
    hook = webhook()
    planned = plan(hook, here=Here(companies={COMPANY.id: "active"}, webhooks={hook.id: True}))
    assert planned.companies[0].action is Action.HERE
    assert planned.webhooks[0].action is Action.SKIP
    assert "deleted here" in planned.webhooks[0].notes[0]
    planned = plan(hook, here=Here(companies={COMPANY.id: "deleted"}))
    assert planned.companies[0].action is Action.SKIP
    assert planned.webhooks[0].action is Action.SKIP


@pytest.mark.parametrize(
    ("fields", "note"),
    [
        ({"status": "inactive"}, 'its status is "inactive"'),
        ({"deleted": None}, "deleted flag is NULL"),
        ({"is_active": False}, "is_active is false"),
    ],
)
def test_a_webhook_socket2webhook_did_not_deliver_to_comes_disabled(
    fields: dict[str, Any], note: str
) -> None:
    planned = plan(webhook(**fields)).webhooks[0]
    assert planned.action is Action.ADD and not planned.enabled
    assert any(note in n for n in planned.notes)


def test_subscriptions_that_cannot_come_are_left_out_with_a_note() -> None:
    subscriptions = (
        SourceSubscription("call-history-was-created", None, []),
        SourceSubscription("call-history-was-created", None, [{"x": 1}]),  # a repeat
        SourceSubscription(None, None, []),  # its event row is gone
        SourceSubscription("bad name!", "Bad", []),
        SourceSubscription("call-was-recorded", "Ligação gravada", []),
    )
    planned = plan(webhook(subscriptions=subscriptions))
    assert planned.webhooks[0].events == ("call-history-was-created", "call-was-recorded")
    assert len(planned.webhooks[0].notes) == 3
    assert [(e.name, e.display_name) for e in planned.event_types] == [
        ("call-was-recorded", "Ligação gravada")
    ]


def test_a_company_on_a_cluster_socket2webhook_could_not_reach_comes_without_a_connection() -> None:
    odd = SourceCompany(uuid.uuid4(), "Odd", "tok", "cluster9", "active")
    planned = plan(company=odd).companies[0]
    assert planned.action is Action.ADD and planned.token is None and planned.cluster is None
