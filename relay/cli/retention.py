"""`relay retention [--dry-run]`: run the execution log's retention job once, now."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import exc as sa_exc

from relay.cli.support import CommandError, database
from relay.execution_log.retention import RetentionError, apply_retention
from relay.settings import RelaySettings
from spool import utc_now


def add_retention_command(commands: Any) -> None:
    retention = commands.add_parser(
        "retention",
        help="create the coming months' partitions and drop expired ones (once)",
        description="PostgreSQL: creates the partitions of this month and the next two, and "
        "drops those wholly older than RELAY_RETENTION_DAYS. SQLite: deletes the rows older "
        "than that, in batches. Meant to run daily; safe to run at any time.",
    )
    retention.add_argument(
        "--dry-run", action="store_true", help="print what would be done; change nothing"
    )
    retention.set_defaults(handler=_retention)


def _retention(args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        try:
            report = apply_retention(
                engine, utc_now(), settings.retention_days, dry_run=args.dry_run
            )
        except RetentionError as exc:
            raise CommandError(str(exc)) from exc
        except sa_exc.SQLAlchemyError as exc:
            detail = " ".join(str(getattr(exc, "orig", None) or exc).split())
            raise CommandError(f"database error ({detail})") from exc
    print(report.summary())
    return 0
