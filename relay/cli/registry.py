"""`relay companies ...`, `relay webhooks ...` and `relay events ...`: manage who gets which
events, through the same registry functions as the management API (relay/registry/writes.py)."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine

from relay.cli.support import CommandError, admin, database
from relay.registry import listing, writes
from relay.registry.filters import Filter, InvalidFilter, parse_filters
from relay.registry.listing import CLUSTERS, COMPANY_STATUSES, CompanyRow, WebhookRow
from relay.settings import RelaySettings

PAGE = 500
T = TypeVar("T")


def add_registry_commands(commands: Any) -> Any:
    """`relay companies|webhooks|events ...`; returns the webhooks' subcommands, to which the
    execution-log commands add `webhooks recover`."""
    companies = commands.add_parser("companies", help="add, list, edit and delete companies")
    company_commands = companies.add_subparsers(dest="companies_command", required=True)
    add = company_commands.add_parser("add", help="add a company; prints its id")
    add.add_argument("name")
    _platform_options(add)
    add.set_defaults(handler=_add_company)
    company_commands.add_parser(
        "list",
        help="list companies: id, status, platform connection (cluster and stream), name",
    ).set_defaults(handler=_list_companies)
    edit = company_commands.add_parser(
        "edit", help="rename, disable or enable a company, or change its platform connection"
    )
    edit.add_argument("id", type=uuid_argument)
    edit.add_argument("--name", help="new name")
    edit.add_argument(
        "--status", choices=COMPANY_STATUSES, help="disabled: intake answers 404 for it"
    )
    _platform_options(edit)
    edit.add_argument(
        "--no-platform",
        action="store_true",
        help="forget the platform token: the relay closes the company's stream",
    )
    edit.set_defaults(handler=_edit_company)
    delete = company_commands.add_parser(
        "delete", help="delete a company and its webhooks (their log rows stay)"
    )
    delete.add_argument("id", type=uuid_argument)
    delete.set_defaults(handler=_delete_company)

    webhooks = commands.add_parser("webhooks", help="add, list, edit and delete webhooks")
    webhook_commands = webhooks.add_subparsers(dest="webhooks_command", required=True)
    add = webhook_commands.add_parser("add", help="subscribe a URL to an event of a company")
    add.add_argument("--company", required=True, type=uuid_argument, help="company id")
    add.add_argument("--url", required=True, help="http(s) URL to POST to")
    add.add_argument("--event", required=True, help="event name, e.g. call-history-was-created")
    _filter_option(add)
    add.add_argument(
        "--secret", action="store_true", help="generate a whsec_ signing secret (printed once)"
    )
    add.set_defaults(handler=_add_webhook)
    listing_command = webhook_commands.add_parser("list", help="list webhooks")
    listing_command.add_argument("--company", type=uuid_argument, help="only this company's")
    listing_command.set_defaults(handler=_list_webhooks)
    edit = webhook_commands.add_parser("edit", help="change a webhook's URL, name, events, filters")
    edit.add_argument("id", type=uuid_argument)
    edit.add_argument("--url", help="new http(s) URL")
    edit.add_argument("--name", help='new name ("" removes it)')
    edit.add_argument(
        "--event",
        action="append",
        dest="events",
        metavar="NAME",
        help="subscribe to exactly these events (repeat the option for several)",
    )
    _filter_option(edit, "; sets the filters of the --event events, or of all its events")
    edit.set_defaults(handler=_edit_webhook)
    for command, help_text, handler in (
        ("disable", "stop deliveries to a webhook", _disable_webhook),
        ("enable", "resume deliveries to a webhook", _enable_webhook),
        ("delete", "delete a webhook (its log rows stay)", _delete_webhook),
        ("rotate-secret", "give a webhook a new signing secret (printed once)", _rotate_secret),
    ):
        one = webhook_commands.add_parser(command, help=help_text)
        one.add_argument("id", type=uuid_argument)
        one.set_defaults(handler=handler)
    _add_event_commands(commands)
    return webhook_commands


def _every(
    settings: RelaySettings, read_page: Callable[[Engine, str | None], listing.Page[T]]
) -> list[T]:
    """Every item of a paged listing, read page by page (the CLI prints whole lists)."""
    with database(settings) as engine:
        return admin(lambda e: list(listing.every(lambda cursor: read_page(e, cursor))), engine)


def _platform_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--platform-token",
        metavar="TOKEN",
        help="the company's 3C Plus token: the relay receives its events over socket.io "
        "(stored, never printed back)",
    )
    parser.add_argument(
        "--cluster",
        choices=CLUSTERS,
        help="the platform cluster the company lives on (default cluster1)",
    )


def _add_event_commands(commands: Any) -> None:
    events = commands.add_parser("events", help="the event catalog: list and add event types")
    event_commands = events.add_subparsers(dest="events_command", required=True)
    add = event_commands.add_parser("add", help="add an event type webhooks may subscribe to")
    add.add_argument("name", help="e.g. call-was-recorded")
    add.add_argument("--display-name", help="what people see")
    add.add_argument(
        "--id-path",
        help="where its events carry their own id, e.g. callHistory._id: the platform "
        "source drops a repeat of an id it has seen",
    )
    add.set_defaults(handler=_add_event)
    event_commands.add_parser(
        "list", help="list event types: name, id path, display name"
    ).set_defaults(handler=_list_events)


def uuid_argument(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {text!r}") from None


def _filter_option(parser: argparse.ArgumentParser, more_help: str = "") -> None:
    parser.add_argument(
        "--filter",
        type=_filters,
        default=None,
        metavar="JSON",
        help='JSON array of {"field_path", "operator", "value"}; all must pass' + more_help,
    )


def _filters(text: str) -> tuple[Filter, ...]:
    try:
        return parse_filters(json.loads(text))
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--filter is not valid JSON: {exc.msg}") from None
    except InvalidFilter as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- companies ----------------------------------------------------------------------------------


def _add_company(args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        company = admin(
            lambda e: writes.add_company(
                e, args.name, platform_token=args.platform_token, cluster=args.cluster
            ),
            engine,
        )
    print(f"{company.id}\t{company.name}")
    return 0


def _list_companies(_args: argparse.Namespace, settings: RelaySettings) -> int:
    rows = _every(settings, lambda e, cursor: listing.companies_page(e, limit=PAGE, cursor=cursor))
    for company in rows:
        print(_company_line(company))
    return 0


def _edit_company(args: argparse.Namespace, settings: RelaySettings) -> int:
    platform = None
    if args.platform_token is not None or args.cluster is not None or args.no_platform:
        platform = writes.PlatformChange(args.platform_token, args.cluster, args.no_platform)
    if args.name is None and args.status is None and platform is None:
        raise CommandError(
            "nothing to change: give --name, --status, --platform-token, --cluster or --no-platform"
        )
    with database(settings) as engine:
        company = admin(
            lambda e: writes.edit_company(
                e, args.id, name=args.name, status=args.status, platform=platform
            ),
            engine,
        )
    print(_company_line(company))
    return 0


def _company_line(company: CompanyRow) -> str:
    """id, status, platform connection, name (last: it may hold spaces). The connection is
    `-` without a token, else the cluster and what its stream is doing (`cluster1
    connected`, `cluster1 refused: invalid token`) once a relay has tried to open it."""
    if not company.platform_token_set:
        return f"{company.id}\t{company.status}\t-\t{company.name}"
    platform = company.cluster or "-"
    stream = company.stream
    if stream is not None:
        platform += f" {stream.state}"
        if stream.detail:
            platform += ": " + " ".join(stream.detail.split())
    return f"{company.id}\t{company.status}\t{platform}\t{company.name}"


def _delete_company(args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        admin(lambda e: writes.delete_company(e, args.id), engine)
    print(f"company {args.id} deleted")
    return 0


# -- webhooks -----------------------------------------------------------------------------------


def _add_webhook(args: argparse.Namespace, settings: RelaySettings) -> int:
    secret = writes.new_signing_secret() if args.secret else None
    with database(settings) as engine:
        webhook = admin(
            lambda e: writes.add_webhook(
                e,
                company_id=args.company,
                url=args.url,
                event=args.event,
                filters=args.filter or (),
                secret=secret,
            ),
            engine,
        )
    print(f"{webhook.id}\t{webhook.url}\t{args.event}")
    if secret:
        print(f"signing secret (shown once, store it now): {secret}")
    return 0


def _list_webhooks(args: argparse.Namespace, settings: RelaySettings) -> int:
    rows = _every(
        settings,
        lambda e, cursor: listing.webhooks_page(
            e, limit=PAGE, cursor=cursor, company_id=args.company
        ),
    )
    for webhook in rows:
        print(_webhook_line(webhook))
    return 0


def _edit_webhook(args: argparse.Namespace, settings: RelaySettings) -> int:
    if all(value is None for value in (args.url, args.name, args.events, args.filter)):
        raise CommandError("nothing to change: give --url, --name, --event or --filter")

    def edit(engine: Engine) -> WebhookRow:
        filters = None
        if args.filter is not None:
            events = args.events or _current(engine, args.id).events
            filters = {event: args.filter for event in events}
        change = writes.WebhookChange(
            url=args.url,
            name=args.name or None,
            clear_name=args.name == "",
            events=args.events,
            filters=filters,
        )
        return writes.edit_webhook(engine, args.id, change)

    with database(settings) as engine:
        webhook = admin(edit, engine)
    print(_webhook_line(webhook))
    return 0


def _current(engine: Engine, webhook_id: uuid.UUID) -> WebhookRow:
    with engine.connect() as conn:
        found = listing.webhook(conn, webhook_id)
    if found is None:
        raise CommandError(f"unknown webhook {webhook_id}")
    return found


def _disable_webhook(args: argparse.Namespace, settings: RelaySettings) -> int:
    return _switch(args, settings, enabled=False)


def _enable_webhook(args: argparse.Namespace, settings: RelaySettings) -> int:
    return _switch(args, settings, enabled=True)


def _switch(args: argparse.Namespace, settings: RelaySettings, *, enabled: bool) -> int:
    with database(settings) as engine:
        admin(
            lambda e: writes.edit_webhook(e, args.id, writes.WebhookChange(enabled=enabled)), engine
        )
    print(f"webhook {args.id} {'enabled' if enabled else 'disabled'}")
    return 0


def _delete_webhook(args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        admin(lambda e: writes.delete_webhook(e, args.id), engine)
    print(f"webhook {args.id} deleted")
    return 0


def _rotate_secret(args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        _webhook, secret = admin(lambda e: writes.rotate_secret(e, args.id), engine)
    print(f"signing secret (shown once, store it now): {secret}")
    return 0


def _webhook_line(webhook: WebhookRow) -> str:
    signed = "signed" if webhook.has_secret else "unsigned"
    events = ",".join(webhook.events) or "-"
    return (
        f"{webhook.id}\t{webhook.company_id}\t{webhook.status}\t{signed}\t{events}\t{webhook.url}"
    )


# -- the event catalog --------------------------------------------------------------------------


def _add_event(args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        added = admin(
            lambda e: writes.add_event_type(e, args.name, args.display_name, args.id_path), engine
        )
    print(f"event {added.name} added")
    return 0


def _list_events(_args: argparse.Namespace, settings: RelaySettings) -> int:
    rows = _every(
        settings, lambda e, cursor: listing.event_types_page(e, limit=PAGE, cursor=cursor)
    )
    for event in rows:
        print(f"{event.name}\t{event.id_path or '-'}\t{event.display_name or ''}")
    return 0
