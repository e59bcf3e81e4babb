"""The `relay` command line: settings, logging and the one-line errors of every command.

Errors a user can fix (bad settings, a corrupt spool, an unreachable database) print one line
and exit 2; a traceback is a bug.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from relay import __version__
from relay.cli.accounts import add_account_commands
from relay.cli.executions import add_execution_commands
from relay.cli.imports import add_import_commands
from relay.cli.purge import add_purge_command
from relay.cli.registry import add_registry_commands
from relay.cli.retention import add_retention_command
from relay.cli.service import add_service_commands
from relay.cli.spool import add_spool_commands
from relay.cli.support import CommandError, Handler
from relay.errors import StartupError
from relay.ops import redaction
from relay.ops.log_config import configure_logging
from relay.settings import RelaySettings
from spool import SinkError, SpoolCorruptError, SpoolError

EXIT_USAGE = 2
SALVAGE_HINT = (
    "The relay will not start over a damaged spool. `relay spool check` shows the damage; "
    "`relay spool salvage NEW_PATH` copies every readable record into a new spool; then set "
    "RELAY_SPOOL_PATH=NEW_PATH and start again (keep the old file as evidence)."
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        settings = RelaySettings()
        configure_logging(
            settings.log_format, verbose=args.verbose, secrets=settings.secret_values()
        )
        return handler(args, settings)
    except ValidationError as exc:
        return _fail(parser, f"invalid configuration: {_validation_summary(exc)}")
    except SpoolCorruptError as exc:
        return _fail(parser, f"{exc}\n{SALVAGE_HINT}")
    except (CommandError, StartupError, SpoolError, SinkError) as exc:
        return _fail(parser, str(exc))


def _fail(parser: argparse.ArgumentParser, message: str) -> int:
    print(f"{parser.prog}: error: {redaction.redact(message)}", file=sys.stderr)
    return EXIT_USAGE


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"])
        parts.append(f"RELAY_{field.upper()}: {error['msg']}")
    return "; ".join(parts)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay", description="Webhook relay with a crash-safe execution log."
    )
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_service_commands(commands)
    webhook_commands = add_registry_commands(commands)
    add_account_commands(commands)
    add_execution_commands(commands, webhook_commands)
    add_spool_commands(commands)
    add_purge_command(commands)
    add_retention_command(commands)
    add_import_commands(commands)
    return parser
