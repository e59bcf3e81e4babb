"""`relay import socket2webhook`: carry a socket2webhook database's companies, webhooks and
filters over to this registry, keeping their ids so that running it again changes nothing.

socket2webhook (Node + React + Supabase) keeps `companies` (`api_token`, `cluster_type`,
`status`), `events` (its catalog), `webhooks` (`status` active/inactive/paused, soft `deleted`)
and `webhook_events` (a webhook's subscriptions, with `filters`). Three steps, so that the
decisions are plain functions of what both sides hold:

1. `read_source` reads their database (read-only) into a `Source`; `read_here` reads what this
   registry already has of it (`Here`).
2. `plan_import` decides, for every company, webhook and filter, what to do and why: add it
   (maybe disabled), it is already here (by id), or skip it. Their filters are converted by
   `relay.registry.socket2webhook_filters`.
3. `apply_plan` makes the additions through `relay.registry.writes` (so the same rules as
   `relay companies add` / `relay webhooks add` hold); `report_lines` says what happened.

What socket2webhook delivered is what decides: a webhook it did not deliver to (inactive,
paused, or of an inactive company) is imported disabled, and one whose filters would deliver
more here than there is imported disabled with the reason, for a person to check; a webhook
that delivers more than before is worse than one that is disabled and reported.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from relay.db.engine import display_url
from relay.db.schema import companies, events, webhooks
from relay.ops import redaction
from relay.registry import writes
from relay.registry.filters import Filter
from relay.registry.listing import ACTIVE, CLUSTERS, DEFAULT_CLUSTER, DELETED, DISABLED
from relay.registry.socket2webhook_filters import (
    UNDEFINED,
    FilterReport,
    Outcome,
    convert_filters,
)

SAMPLES: Final = Path(__file__).resolve().parents[1] / "samples"
# What their code reads; a database without these is not a socket2webhook database.
REQUIRED_COLUMNS: Final = {
    "companies": ("id", "name", "api_token"),
    "webhooks": ("id", "company_id", "url"),
    "webhook_events": ("webhook_id", "event_id"),
    "events": ("id", "name"),
}
EXECUTIONS_COUNTED: Final = 1_000_000  # beyond this the summary says "more than"


class SourceError(Exception):
    """The socket2webhook database cannot be read as one (bad URL, unreachable, another
    kind of database): nothing was written. The message is one line, without the password."""


# -- what their database holds ------------------------------------------------------------------


@dataclass(frozen=True)
class SourceCompany:
    id: uuid.UUID
    name: str
    api_token: str | None
    cluster_type: str | None
    status: str | None  # active / inactive; None when the column is missing or NULL
    deleted: bool | None = False


@dataclass(frozen=True)
class SourceSubscription:
    event: str | None  # None: the subscription points at an event row that is gone
    display_name: str | None
    filters: object  # `webhook_events.filters` as stored (a JSON array, normally)


@dataclass(frozen=True)
class SourceWebhook:
    id: uuid.UUID
    company_id: uuid.UUID
    name: str | None
    url: str
    status: str | None  # active / inactive / paused
    deleted: bool | None = False  # None: NULL, which their `.eq('deleted', false)` leaves out
    is_active: bool | None = None  # an older schema's flag, if the column exists
    subscriptions: tuple[SourceSubscription, ...] = ()


@dataclass(frozen=True)
class Source:
    """A socket2webhook database's registry, and where it was read (password hidden)."""

    where: str
    companies: tuple[SourceCompany, ...]
    webhooks: tuple[SourceWebhook, ...]
    executions: int | None = None  # rows in their execution log (not imported), if counted


@dataclass(frozen=True)
class Here:
    """What this registry has that an import must not add twice."""

    companies: Mapping[uuid.UUID, str] = field(default_factory=dict)  # id -> status
    webhooks: Mapping[uuid.UUID, bool] = field(default_factory=dict)  # id -> deleted
    events: frozenset[str] = frozenset()
    tokens: Mapping[str, uuid.UUID] = field(default_factory=dict)  # platform token -> company


# -- the plan -----------------------------------------------------------------------------------


class Action(StrEnum):
    ADD = "add"
    HERE = "here"  # already here (an earlier import): left as it is
    SKIP = "skip"


@dataclass(frozen=True)
class CompanyPlan:
    source: SourceCompany
    action: Action
    status: str = ACTIVE
    token: str | None = None
    cluster: str | None = None
    notes: tuple[str, ...] = ()  # why it is skipped, or what differs from theirs


@dataclass(frozen=True)
class WebhookPlan:
    source: SourceWebhook
    company: str  # the company's name, for the report
    action: Action
    enabled: bool = True
    events: tuple[str, ...] = ()
    filters: Mapping[str, tuple[Filter, ...]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    reports: tuple[tuple[str, FilterReport], ...] = ()  # (event, report) per filter of theirs


@dataclass(frozen=True)
class EventTypePlan:
    name: str
    display_name: str | None


@dataclass(frozen=True)
class Plan:
    event_types: tuple[EventTypePlan, ...]
    companies: tuple[CompanyPlan, ...]
    webhooks: tuple[WebhookPlan, ...]


def plan_import(source: Source, here: Here, *, samples: Mapping[str, object] | None = None) -> Plan:
    """Decide what to do with each of their companies, webhooks and filters (no I/O).
    `samples` (event name -> an event body) tell a number field from a text field."""
    source_ids = {company.id for company in source.companies}
    company_plans = tuple(_plan_company(c, here, source_ids) for c in source.companies)
    by_id = {plan.source.id: plan for plan in company_plans}
    new_events: dict[str, EventTypePlan] = {}
    webhook_plans = tuple(
        _plan_webhook(w, by_id.get(w.company_id), here, samples or {}, new_events)
        for w in source.webhooks
    )
    wanted = {event for p in webhook_plans if p.action is Action.ADD for event in p.events}
    return Plan(
        tuple(plan for name, plan in new_events.items() if name in wanted),
        company_plans,
        webhook_plans,
    )


def _plan_company(company: SourceCompany, here: Here, source_ids: set[uuid.UUID]) -> CompanyPlan:
    if company.deleted:
        return CompanyPlan(company, Action.SKIP, notes=("deleted in socket2webhook",))
    if company.id in here.companies:
        if here.companies[company.id] == DELETED:
            return CompanyPlan(
                company, Action.SKIP, notes=("deleted here after an earlier import: left deleted",)
            )
        return CompanyPlan(company, Action.HERE)
    name = (company.name or "").strip()
    if not name or len(name) > 255:
        return CompanyPlan(
            company, Action.SKIP, notes=("its name is empty or longer than 255 characters",)
        )
    notes: list[str] = []
    status = ACTIVE
    if company.status != ACTIVE:
        status = DISABLED
        notes.append(
            f"disabled: its status is {_quoted(company.status)} in socket2webhook, "
            "which connected only active companies"
        )
    token = (company.api_token or "").strip() or None
    cluster: str | None = None
    if token is None:
        notes.append(
            "without a platform connection: it has no api_token (socket2webhook never connected it)"
        )
    elif not _usable_token(token):
        notes.append(
            "without a platform connection: its api_token has spaces or is longer "
            f"than {writes.MAX_TOKEN_LENGTH} characters, which no 3C Plus token has"
        )
        token = None
    elif token in here.tokens and here.tokens[token] not in source_ids:
        other = here.tokens[token]
        return CompanyPlan(
            company,
            Action.SKIP,
            notes=(
                f"its api_token is already the platform token of company {other} here: a "
                "second company on it would receive every event twice",
            ),
        )
    elif company.cluster_type is None:
        cluster = DEFAULT_CLUSTER
        notes.append(
            f"on {DEFAULT_CLUSTER}: its cluster_type is NULL, and socket2webhook fell back "
            f"to {DEFAULT_CLUSTER}"
        )
    elif company.cluster_type in CLUSTERS:
        cluster = company.cluster_type
    else:
        notes.append(
            "without a platform connection: its cluster_type "
            f"{_quoted(company.cluster_type)} is not one socket2webhook could connect to"
        )
        token = None
    return CompanyPlan(company, Action.ADD, status, token, cluster, tuple(notes))


def _usable_token(token: str) -> bool:
    return len(token) <= writes.MAX_TOKEN_LENGTH and not any(c.isspace() for c in token)


def _plan_webhook(
    webhook: SourceWebhook,
    company: CompanyPlan | None,
    here: Here,
    samples: Mapping[str, object],
    new_events: dict[str, EventTypePlan],
) -> WebhookPlan:
    name = company.source.name if company else "?"
    if webhook.deleted:
        return WebhookPlan(webhook, name, Action.SKIP, notes=("deleted in socket2webhook",))
    if company is None:
        return WebhookPlan(
            webhook, name, Action.SKIP, notes=("its company is not in socket2webhook's companies",)
        )
    if webhook.id in here.webhooks:
        if here.webhooks[webhook.id]:
            return WebhookPlan(
                webhook,
                name,
                Action.SKIP,
                notes=("deleted here after an earlier import: left deleted",),
            )
        return WebhookPlan(webhook, name, Action.HERE)
    if company.action is Action.SKIP:
        return WebhookPlan(
            webhook, name, Action.SKIP, notes=(f"its company is not imported ({company.notes[0]})",)
        )
    try:
        writes.validate_url(webhook.url)
    except writes.AdminError as error:
        return WebhookPlan(webhook, name, Action.SKIP, notes=(error.message,))
    notes: list[str] = []
    enabled = True
    if webhook.deleted is None:
        enabled = False
        notes.append("its deleted flag is NULL, which socket2webhook did not deliver to")
    if webhook.status != ACTIVE:
        enabled = False
        notes.append(f"its status is {_quoted(webhook.status)} in socket2webhook")
    if webhook.is_active is not None and not webhook.is_active:
        enabled = False
        notes.append("is_active is false in socket2webhook")
    event_names: list[str] = []
    filters: dict[str, tuple[Filter, ...]] = {}
    reports: list[tuple[str, FilterReport]] = []
    for subscription in webhook.subscriptions:
        event = subscription.event
        if event is None:
            notes.append(
                "a subscription to an event missing from socket2webhook's catalog is left out "
                "(it received nothing there)"
            )
            continue
        if event in event_names:
            notes.append(
                f"a second subscription to {event} is left out (socket2webhook used the first)"
            )
            continue
        if event not in here.events and event not in new_events:
            if not writes.EVENT_NAME.fullmatch(event):
                notes.append(
                    f"its subscription to {event!r} is left out: not an event name we accept"
                )
                continue
            display = (subscription.display_name or "").strip()[:255] or None
            new_events[event] = EventTypePlan(event, display)
        converted = convert_filters(subscription.filters, sample=samples.get(event, UNDEFINED))
        event_names.append(event)
        filters[event] = converted.filters
        reports.extend((event, report) for report in converted.reports)
    if not event_names:
        return WebhookPlan(
            webhook,
            name,
            Action.SKIP,
            notes=(*notes, "it is subscribed to no event (socket2webhook delivered nothing to it)"),
        )
    if any(report.outcome.disables for _, report in reports):
        enabled = False
    return WebhookPlan(
        webhook,
        name,
        Action.ADD,
        enabled,
        tuple(event_names),
        filters,
        tuple(notes),
        tuple(reports),
    )


# -- applying it --------------------------------------------------------------------------------


def apply_plan(engine: Engine, plan: Plan) -> dict[uuid.UUID, str]:
    """Make the plan's additions; an item the registry refuses (or that appeared meanwhile)
    is left out with the reason, returned by id. A database failure propagates."""
    failed: dict[uuid.UUID, str] = {}
    for event_type in plan.event_types:
        # One that exists already (409) is all we need; another refusal shows as the
        # failure of the webhooks subscribing to it.
        with contextlib.suppress(writes.AdminError):
            writes.add_event_type(engine, event_type.name, event_type.display_name)
    for company in plan.companies:
        if company.action is Action.ADD:
            failed.update(_attempt(company.source.id, partial(_add_company, engine, company)))
    for webhook in plan.webhooks:
        if webhook.action is not Action.ADD:
            continue
        if webhook.source.company_id in failed:
            failed[webhook.source.id] = "its company could not be added"
            continue
        failed.update(_attempt(webhook.source.id, partial(_add_webhook, engine, webhook)))
    return failed


def _add_company(engine: Engine, company: CompanyPlan) -> None:
    writes.add_company(
        engine,
        company.source.name,
        platform_token=company.token,
        cluster=company.cluster,
        company_id=company.source.id,
        status=company.status,
    )


def _add_webhook(engine: Engine, webhook: WebhookPlan) -> None:
    writes.create_webhook(
        engine,
        company_id=webhook.source.company_id,
        url=webhook.source.url,
        events=webhook.events,
        filters=webhook.filters,
        secret=None,
        name=webhook.source.name,
        webhook_id=webhook.source.id,
        enabled=webhook.enabled,
    )


def _attempt(item: uuid.UUID, add: Callable[[], None]) -> dict[uuid.UUID, str]:
    try:
        add()
    except writes.AdminError as error:
        return {item: error.message}
    except sa.exc.IntegrityError:
        return {item: "a row with its id appeared here meanwhile (another import?)"}
    return {}


# -- the report ---------------------------------------------------------------------------------


def report_lines(
    source: Source, plan: Plan, *, dry_run: bool, failed: Mapping[uuid.UUID, str] | None = None
) -> list[str]:
    """What was done (or, for a dry run, would be), one line per item not carried over or
    changed, company by company, then a summary. Tokens are never shown."""
    failed = failed or {}
    added = "would be added" if dry_run else "added"
    lines = _heading(source, dry_run=dry_run)
    for event_type in plan.event_types:
        display = event_type.display_name
        lines.append(
            f"{added}: event type {event_type.name} to the catalog"
            + (f" ({json.dumps(display, ensure_ascii=False)})" if display else "")
            + ": socket2webhook's webhooks subscribe to it and our catalog lacked it"
        )
    webhooks_of: dict[uuid.UUID, list[WebhookPlan]] = {}
    for webhook in plan.webhooks:
        webhooks_of.setdefault(webhook.source.company_id, []).append(webhook)
    for company in plan.companies:
        lines.extend(_company_lines(company, failed, added))
        for webhook in webhooks_of.pop(company.source.id, []):
            lines.extend(_webhook_lines(webhook, failed, added))
    for orphans in webhooks_of.values():
        for webhook in orphans:
            lines.extend(_webhook_lines(webhook, failed, added))
    lines.extend(_summary(plan, failed, dry_run=dry_run))
    return lines


def _heading(source: Source, *, dry_run: bool) -> list[str]:
    subscriptions = sum(len(w.subscriptions) for w in source.webhooks)
    text = (
        f"socket2webhook at {source.where}: {_count(len(source.companies), 'company')}, "
        f"{_count(len(source.webhooks), 'webhook')}, {_count(subscriptions, 'subscription')}"
    )
    if source.executions is not None:
        rows = source.executions
        amount = f"more than {EXECUTIONS_COUNTED:,}" if rows > EXECUTIONS_COUNTED else f"{rows:,}"
        text += f" ({amount} execution log rows stay there: the log is not imported)"
    if dry_run:
        return [text, "dry run: nothing is written; this is what the import would do"]
    return [text]


def _company_lines(
    company: CompanyPlan, failed: Mapping[uuid.UUID, str], added: str
) -> Iterator[str]:
    thing = f"company {_quoted(company.source.name)} ({company.source.id})"
    if company.action is Action.SKIP:
        yield f"skipped: {thing}: {company.notes[0]}"
    elif company.action is Action.ADD and company.source.id in failed:
        yield f"skipped: {thing}: {failed[company.source.id]}"
    elif company.action is Action.ADD:
        for note in company.notes:
            yield f"changed: {thing}: {added} {note}"


def _webhook_lines(
    webhook: WebhookPlan, failed: Mapping[uuid.UUID, str], added: str
) -> Iterator[str]:
    thing = _webhook_thing(webhook)
    if webhook.action is Action.SKIP:
        yield f"skipped: {thing}: {'; '.join(webhook.notes)}"
        return
    if webhook.action is not Action.ADD:
        return
    if webhook.source.id in failed:
        yield f"skipped: {thing}: {failed[webhook.source.id]}"
        return
    notes = list(webhook.notes)
    disabling = [(event, r) for event, r in webhook.reports if r.outcome.disables]
    if disabling:
        notes.append(
            f"{_count(len(disabling), 'filter')} below would deliver events socket2webhook "
            f"did not; check, then `relay webhooks enable {webhook.source.id}`"
        )
    if notes:
        state = "enabled" if webhook.enabled else "disabled"
        yield f"changed: {thing}: {added} {state}: {'; '.join(notes)}"
    for event, report in webhook.reports:
        if report.outcome is Outcome.EXACT:
            continue
        where = f"{thing}, event {event}, filter {report.number} ({report.source})"
        if report.outcome is Outcome.DROPPED:
            yield f"skipped: {where}: not carried over, so its webhook is disabled: {report.detail}"
        elif report.outcome is Outcome.WIDER:
            yield (
                f"disabled: {where}: became {report.converted_text}, which lets through more "
                f"than socket2webhook did: {report.detail}"
            )
        else:
            kept = report.converted_text == report.source
            change = "kept as it is" if kept else f"became {report.converted_text}"
            yield f"warning: {where}: {change}; {report.detail}"


def _webhook_thing(webhook: WebhookPlan) -> str:
    named = f" {_quoted(webhook.source.name)}" if webhook.source.name else ""
    return f"webhook{named} ({webhook.source.id}) of company {_quoted(webhook.company)}"


def _summary(plan: Plan, failed: Mapping[uuid.UUID, str], *, dry_run: bool) -> list[str]:
    def outcome(action: Action, item: uuid.UUID) -> str:
        if action is Action.ADD and item in failed:
            return "skip"
        return action.value

    company_counts = Counter(outcome(p.action, p.source.id) for p in plan.companies)
    webhook_counts = Counter(outcome(p.action, p.source.id) for p in plan.webhooks)
    added_companies = [p for p in plan.companies if outcome(p.action, p.source.id) == "add"]
    added_webhooks = [p for p in plan.webhooks if outcome(p.action, p.source.id) == "add"]
    disabled_companies = sum(1 for p in added_companies if p.status != ACTIVE)
    disabled_webhooks = sum(1 for p in added_webhooks if not p.enabled)
    reports = Counter(r.outcome for p in added_webhooks for _, r in p.reports)
    converted = sum(n for o, n in reports.items() if o is not Outcome.DROPPED)
    warned = reports[Outcome.NARROWER] + reports[Outcome.UNUSUAL]
    added = "to add" if dry_run else "added"
    return [
        "summary" + (" (dry run)" if dry_run else ""),
        f"  companies    {added} {company_counts['add']} ({disabled_companies} disabled), "
        f"already here {company_counts['here']}, skipped {company_counts['skip']}",
        f"  webhooks     {added} {webhook_counts['add']} ({disabled_webhooks} disabled), "
        f"already here {webhook_counts['here']}, skipped {webhook_counts['skip']}",
        f"  event types  {added} {len(plan.event_types)}",
        f"  filters      converted {converted} ({warned} with warnings, "
        f"{reports[Outcome.WIDER]} letting more through), "
        f"not carried over {reports[Outcome.DROPPED]}",
    ]


def _count(n: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


def _quoted(text: str | None) -> str:
    return "NULL" if text is None else json.dumps(text, ensure_ascii=False)


# -- reading both sides -------------------------------------------------------------------------


def source_url(text: str) -> URL:
    """The `--from` URL for SQLAlchemy with psycopg 3 (`postgres://` as Supabase writes it
    is accepted too); anything but PostgreSQL is refused."""
    try:
        url = make_url(text.strip())
    except (sa.exc.ArgumentError, ValueError):
        raise SourceError(
            "--from is not a database URL (expected one like "
            "postgresql://postgres@db.example.supabase.co:5432/postgres)"
        ) from None
    if url.drivername.split("+")[0] not in ("postgresql", "postgres"):
        raise SourceError(
            f"--from must be a PostgreSQL URL (postgresql://...), not {url.drivername}://"
        )
    return url.set(drivername="postgresql+psycopg")


def read_source(text: str, *, timeout_seconds: float = 10) -> Source:
    """Read a socket2webhook database, in a read-only transaction."""
    url = source_url(text)
    where = display_url(make_url(text.strip()))  # as the user wrote it, password hidden
    if url.password:
        redaction.register(str(url.password))
    # No startup options: Supabase's poolers refuse them. One transaction, read-only from its
    # first statement, each statement bounded.
    engine = sa.create_engine(
        url, poolclass=NullPool, connect_args={"connect_timeout": max(1, int(timeout_seconds))}
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SET TRANSACTION READ ONLY"))
            conn.execute(sa.text("SET LOCAL statement_timeout = '60s'"))
            return _read(conn, where)
    except sa.exc.DBAPIError as error:
        detail = " ".join(str(error.orig or error).split())
        raise SourceError(
            f"cannot read the socket2webhook database at {where}: {redaction.redact(detail)}"
        ) from None
    finally:
        engine.dispose()


def _read(conn: Connection, where: str) -> Source:
    columns: dict[str, set[str]] = {}
    rows = conn.execute(
        sa.text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema()"
        )
    )
    for table, column in rows:
        columns.setdefault(table, set()).add(column)
    for table, required in REQUIRED_COLUMNS.items():
        missing = [c for c in required if c not in columns.get(table, set())]
        if missing:
            raise SourceError(
                f"{where} is not a socket2webhook database: it has no {table}.{missing[0]} "
                "column (is --from the right database?)"
            )

    def pick(table: str, column: str, alias: str = "", default: str | None = None) -> str:
        """The column, or its stand-in in an older schema (NULL, or `default`)."""
        prefix = f"{alias}." if alias else ""
        if column in columns[table]:
            return f"{prefix}{column}"
        return f"'{default}' AS {column}" if default else f"NULL AS {column}"

    def order(table: str, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return f"{prefix}created_at, " if "created_at" in columns[table] else ""

    company_rows = conn.execute(
        sa.text(
            f"SELECT id, name, api_token, {pick('companies', 'cluster_type')}, "
            f"{pick('companies', 'status', default=ACTIVE)}, {pick('companies', 'deleted')} "
            f"FROM companies ORDER BY {order('companies')}id"
        )
    ).all()
    webhook_rows = conn.execute(
        sa.text(
            f"SELECT id, company_id, {pick('webhooks', 'name')}, url, "
            f"{pick('webhooks', 'status', default=ACTIVE)}, "
            f"{pick('webhooks', 'deleted')}, {pick('webhooks', 'is_active')} "
            f"FROM webhooks ORDER BY {order('webhooks')}id"
        )
    ).all()
    subscription_rows = conn.execute(
        sa.text(
            f"SELECT we.webhook_id, e.name, {pick('events', 'display_name', 'e')}, "
            f"{pick('webhook_events', 'filters', 'we')} "
            "FROM webhook_events we LEFT JOIN events e ON e.id = we.event_id "
            f"ORDER BY we.webhook_id, {order('webhook_events', 'we')}e.name"
        )
    ).all()
    executions = None
    if "webhook_executions" in columns:
        executions = conn.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT 1 FROM webhook_executions "
                f"LIMIT {EXECUTIONS_COUNTED + 1}) AS counted"
            )
        ).scalar_one()
    subscriptions: dict[object, list[SourceSubscription]] = {}
    for webhook_id, event, display_name, filters in subscription_rows:
        subscriptions.setdefault(str(webhook_id), []).append(
            SourceSubscription(event, display_name, filters)
        )
    return Source(
        where,
        tuple(_source_companies(company_rows, has_deleted="deleted" in columns["companies"])),
        tuple(
            _source_webhooks(
                webhook_rows, subscriptions, has_deleted="deleted" in columns["webhooks"]
            )
        ),
        executions,
    )


def _source_companies(
    rows: Sequence[sa.Row[tuple[object, ...]]], *, has_deleted: bool
) -> Iterator[SourceCompany]:
    for row in rows:
        company_id = _uuid(row.id)
        if company_id is None:
            continue  # socket2webhook's ids are uuids; a row without one cannot be kept apart
        yield SourceCompany(
            company_id,
            str(row.name or ""),
            None if row.api_token is None else str(row.api_token),
            None if row.cluster_type is None else str(row.cluster_type),
            None if row.status is None else str(row.status),
            bool(row.deleted) if has_deleted and row.deleted is not None else False,
        )


def _source_webhooks(
    rows: Sequence[sa.Row[tuple[object, ...]]],
    subscriptions: Mapping[object, list[SourceSubscription]],
    *,
    has_deleted: bool,
) -> Iterator[SourceWebhook]:
    for row in rows:
        webhook_id, company_id = _uuid(row.id), _uuid(row.company_id)
        if webhook_id is None or company_id is None:
            continue
        deleted: bool | None = False
        if has_deleted:
            deleted = None if row.deleted is None else bool(row.deleted)
        yield SourceWebhook(
            webhook_id,
            company_id,
            None if row.name is None else str(row.name),
            str(row.url or ""),
            None if row.status is None else str(row.status),
            deleted,
            None if row.is_active is None else bool(row.is_active),
            tuple(subscriptions.get(str(row.id), ())),
        )


def _uuid(value: object) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def read_here(engine: Engine) -> Here:
    """The registry's companies (deleted ones too: their ids are taken), webhooks, event
    names and platform tokens."""
    with engine.connect() as conn:
        company_rows = conn.execute(
            sa.select(companies.c.id, companies.c.status, companies.c.platform_token)
        ).all()
        webhook_rows = conn.execute(sa.select(webhooks.c.id, webhooks.c.deleted)).all()
        names = frozenset(conn.execute(sa.select(events.c.name)).scalars())
    return Here(
        companies={row.id: row.status or ACTIVE for row in company_rows},
        webhooks={row.id: bool(row.deleted) for row in webhook_rows},
        events=names,
        tokens={
            row.platform_token: row.id
            for row in company_rows
            if row.platform_token and row.status != DELETED
        },
    )


def shipped_samples() -> dict[str, object]:
    """The event bodies shipped in relay/samples, by event name (file `NAME.json`)."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(SAMPLES.glob("*.json"))}


@dataclass(frozen=True)
class ImportResult:
    lines: list[str]
    plan: Plan


def import_socket2webhook(
    engine: Engine,
    source_text: str,
    *,
    dry_run: bool = False,
    samples: Mapping[str, object] | None = None,
) -> ImportResult:
    """Read their database, plan, apply (unless `dry_run`), and report."""
    source = read_source(source_text)
    plan = plan_import(source, read_here(engine), samples=samples)
    failed = {} if dry_run else apply_plan(engine, plan)
    return ImportResult(report_lines(source, plan, dry_run=dry_run, failed=failed), plan)
