"""`relay companies ...` and `relay webhooks ...`: manage who gets which events."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from relay.cli.support import CommandError, database
from relay.registry import writes
from relay.registry.filters import Filter, InvalidFilter, parse_filters
from relay.settings import RelaySettings

T = TypeVar("T")


def add_registry_commands(commands: Any) -> None:
    companies = commands.add_parser("companies", help="add and list companies")
    company_commands = companies.add_subparsers(dest="companies_command", required=True)
    add = company_commands.add_parser("add", help="add a company; prints its id")
    add.add_argument("name")
    add.set_defaults(handler=_add_company)
    company_commands.add_parser("list", help="list companies").set_defaults(handler=_list_companies)

    webhooks = commands.add_parser("webhooks", help="add, list and disable webhooks")
    webhook_commands = webhooks.add_subparsers(dest="webhooks_command", required=True)
    add = webhook_commands.add_parser("add", help="subscribe a URL to an event of a company")
    add.add_argument("--company", required=True, type=_uuid, help="company id")
    add.add_argument("--url", required=True, help="http(s) URL to POST to")
    add.add_argument("--event", required=True, help="event name, e.g. call-history-was-created")
    add.add_argument(
        "--filter",
        type=_filters,
        default=(),
        metavar="JSON",
        help='JSON array of {"field_path", "operator", "value"}; all must pass',
    )
    add.add_argument(
        "--secret", action="store_true", help="generate a whsec_ signing secret (printed once)"
    )
    add.set_defaults(handler=_add_webhook)
    listing = webhook_commands.add_parser("list", help="list webhooks")
    listing.add_argument("--company", type=_uuid, help="only this company's")
    listing.set_defaults(handler=_list_webhooks)
    disable = webhook_commands.add_parser("disable", help="stop deliveries to a webhook")
    disable.add_argument("id", type=_uuid)
    disable.set_defaults(handler=_disable_webhook)


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {text!r}") from None


def _filters(text: str) -> tuple[Filter, ...]:
    try:
        return parse_filters(json.loads(text))
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--filter is not valid JSON: {exc.msg}") from None
    except InvalidFilter as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_company(args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        company = _admin(lambda e: writes.add_company(e, args.name), engine)
    print(f"{company.id}\t{company.name}")
    return 0


def _list_companies(_args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        rows = _admin(writes.list_companies, engine)
    for company in rows:
        print(f"{company.id}\t{company.status}\t{company.name}")
    return 0


def _add_webhook(args: argparse.Namespace, settings: RelaySettings) -> int:
    secret = writes.new_signing_secret() if args.secret else None
    with database(settings) as engine:
        webhook = _admin(
            lambda e: writes.add_webhook(
                e,
                company_id=args.company,
                url=args.url,
                event=args.event,
                filters=args.filter,
                secret=secret,
            ),
            engine,
        )
    print(f"{webhook.id}\t{webhook.url}\t{args.event}")
    if secret:
        print(f"signing secret (shown once, store it now): {secret}")
    return 0


def _list_webhooks(args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        rows = _admin(lambda e: writes.list_webhooks(e, args.company), engine)
    for webhook in rows:
        signed = "signed" if webhook.has_secret else "unsigned"
        events = ",".join(webhook.events) or "-"
        print(
            f"{webhook.id}\t{webhook.company_id}\t{webhook.status}\t{signed}\t{events}"
            f"\t{webhook.url}"
        )
    return 0


def _disable_webhook(args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        _admin(lambda e: writes.disable_webhook(e, args.id), engine)
    print(f"webhook {args.id} disabled")
    return 0


def _admin(action: Callable[[Engine], T], engine: Engine) -> T:
    """Run a registry change, turning its expected failures into one-line errors."""
    try:
        return action(engine)
    except writes.AdminError as exc:
        raise CommandError(str(exc)) from exc
    except sa_exc.SQLAlchemyError as exc:
        detail = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise CommandError(f"database error ({detail}); has `relay migrate` been run?") from exc
