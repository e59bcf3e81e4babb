"""`relay import socket2webhook --from URL [--dry-run]`: switch from socket2webhook in one
command (relay/registry/socket2webhook.py does the reading, deciding and writing)."""

from __future__ import annotations

import argparse
from typing import Any

from relay.cli.support import CommandError, admin, database
from relay.registry import socket2webhook
from relay.settings import RelaySettings


def add_import_commands(commands: Any) -> None:
    imports = commands.add_parser(
        "import", help="import companies and webhooks from another system"
    )
    sources = imports.add_subparsers(dest="import_command", required=True, metavar="SYSTEM")
    one = sources.add_parser(
        "socket2webhook",
        help="import a socket2webhook database's companies, webhooks and filters "
        "(running it again changes nothing)",
    )
    one.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="URL",
        help="its PostgreSQL database, postgresql://user:password@host:5432/postgres "
        "(read only; the password is never printed)",
    )
    one.add_argument(
        "--dry-run", action="store_true", help="print what would be done, change nothing"
    )
    one.set_defaults(handler=_import_socket2webhook)


def _import_socket2webhook(args: argparse.Namespace, settings: RelaySettings) -> int:
    samples = socket2webhook.shipped_samples()
    with database(settings) as engine:
        try:
            result = admin(
                lambda e: socket2webhook.import_socket2webhook(
                    e, args.source, dry_run=args.dry_run, samples=samples
                ),
                engine,
            )
        except socket2webhook.SourceError as error:
            raise CommandError(str(error)) from None
    for line in result.lines:
        print(line)
    return 0
