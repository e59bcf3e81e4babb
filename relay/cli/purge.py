"""`relay purge --phone NUMBER`: the command line of `relay.execution_log.purge`."""

from __future__ import annotations

import argparse
from typing import Any

from relay.cli.support import CommandError, database
from relay.execution_log.purge import PurgeError, purge_phone
from relay.execution_log.record import PHONE_MAX_DIGITS, phone_number_of
from relay.runtime.wiring import open_spool
from relay.settings import RelaySettings

DEFAULT_WAIT_SECONDS = 30.0


def add_purge_command(commands: Any) -> None:
    purge = commands.add_parser(
        "purge",
        help="erase a phone number's execution-log rows (spool and database)",
        description="Deletes every execution-log row of one phone number from the spool "
        "(pending rows and dead letters) and from the database, and says how many.",
    )
    purge.add_argument(
        "--phone",
        type=phone_argument,
        required=True,
        metavar="NUMBER",
        help="the number as dialled; only its digits count (+55 (11) 98765-4321)",
    )
    purge.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help="how long to wait for a drain cycle in progress (default 30)",
    )
    purge.set_defaults(handler=_purge)


def phone_argument(text: str) -> str:
    """NUMBER normalised as log rows are (digits only), or a usage error."""
    digits = phone_number_of({"number": text})
    if digits is None:
        raise argparse.ArgumentTypeError(
            f"not a phone number (1 to {PHONE_MAX_DIGITS} digits): {text!r}"
        )
    return digits


def _purge(args: argparse.Namespace, settings: RelaySettings) -> int:
    spool, queue = open_spool(settings)
    try:
        with database(settings) as engine:
            report = purge_phone(queue, engine, args.phone, wait_seconds=args.wait)
    except PurgeError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        spool.close()
    print(report.render())
    return 0
