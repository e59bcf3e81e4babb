"""`relay spool ...`: look into the local spool, check it, salvage it, handle dead letters."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from relay.cli.support import CommandError
from relay.runtime.wiring import open_spool
from relay.settings import RelaySettings
from spool import QueueStats, check_file, salvage, utc_now


def add_spool_commands(commands: Any) -> None:
    spool = commands.add_parser("spool", help="inspect, check and salvage the local spool")
    spool_commands = spool.add_subparsers(dest="spool_command", required=True, metavar="COMMAND")
    spool_commands.add_parser(
        "status", help="pending rows per company, dead letters, size"
    ).set_defaults(handler=_status)
    spool_commands.add_parser(
        "check", help="full integrity check (read-only); exit 2 if damaged"
    ).set_defaults(handler=_check)
    rescue = spool_commands.add_parser(
        "salvage", help="copy every readable record into a NEW spool file (read-only on the old)"
    )
    rescue.add_argument("destination", type=Path, help="path of the new spool (must not exist)")
    rescue.set_defaults(handler=_salvage)

    dead = spool_commands.add_parser("dead-letters", help="records the database refused")
    dead_commands = dead.add_subparsers(dest="dead_command", required=True, metavar="COMMAND")
    dead_commands.add_parser("list", help="id, company, age, error").set_defaults(
        handler=_dead_list
    )
    retry = dead_commands.add_parser("retry", help="put dead letters back in the queue")
    _ids_or_all(retry)
    retry.set_defaults(handler=_dead_retry)
    purge = dead_commands.add_parser("purge", help="delete dead letters for good")
    _ids_or_all(purge)
    purge.add_argument(
        "--older-than", type=_duration, metavar="AGE", help="only those older than e.g. 7d, 12h"
    )
    purge.set_defaults(handler=_dead_purge)


def _ids_or_all(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="*", metavar="ID", help="dead-letter ids")
    parser.add_argument("--all", action="store_true", help="every dead letter")


def _duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise argparse.ArgumentTypeError(f"not a duration like 30m, 12h or 7d: {text!r}")
    return timedelta(seconds=int(number) * units[unit])


def _selected_ids(args: argparse.Namespace) -> list[str] | None:
    """The ids asked for, or None for --all; refuses neither and both."""
    if args.all == bool(args.ids):
        older = getattr(args, "older_than", None)
        if not args.all and older is not None:
            return None  # purge --older-than alone: every dead letter past that age
        raise CommandError("name dead-letter ids, or --all (not both)")
    return None if args.all else list(args.ids)


def _status(_args: argparse.Namespace, settings: RelaySettings) -> int:
    spool, queue = open_spool(settings)
    try:
        print(render_status(settings, queue.stats(), spool.file_bytes(), utc_now()))
    finally:
        spool.close()
    return 0


def render_status(
    settings: RelaySettings, stats: QueueStats, file_bytes: int, now: datetime
) -> str:
    lines = [
        f"spool: {settings.spool_path} ({file_bytes:,} bytes on disk, "
        f"bound {settings.spool_max_bytes:,})",
        f"pending: {stats.pending} rows for {len(stats.backlogs)} companies; "
        f"dead letters: {stats.dead_letters}",
    ]
    if stats.backlogs:
        oldest = min(b.oldest_enqueued_at for b in stats.backlogs)
        lines.append(f"oldest pending: {(now - oldest).total_seconds():.1f} s")
        lines.append(f"{'company':<38} {'pending':>8} {'oldest (s)':>11}")
        for backlog in sorted(stats.backlogs, key=lambda b: b.oldest_enqueued_at):
            age = (now - backlog.oldest_enqueued_at).total_seconds()
            lines.append(f"{backlog.key:<38} {backlog.pending:>8} {age:>11.1f}")
    return "\n".join(lines)


def _check(_args: argparse.Namespace, settings: RelaySettings) -> int:
    try:
        report = check_file(settings.spool_path)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from exc
    counts = ", ".join(f"{table} {rows}" for table, rows in sorted(report.rows_per_table.items()))
    if report.ok:
        print(f"spool {report.path}: ok ({counts})")
        return 0
    for problem in report.problems[:20]:
        print(f"  {problem}")
    raise CommandError(
        f"spool {report.path} is damaged ({len(report.problems)} problems). It was not "
        f"changed. Recover what is readable: relay spool salvage NEW_PATH, then point "
        f"RELAY_SPOOL_PATH at NEW_PATH"
    )


def _salvage(args: argparse.Namespace, settings: RelaySettings) -> int:
    try:
        report = salvage(settings.spool_path, args.destination)
    except (FileNotFoundError, FileExistsError) as exc:
        raise CommandError(str(exc)) from exc
    for table, rows in sorted(report.copied.items()):
        gaps = report.unreadable_stretches.get(table, 0)
        note = f", {gaps} unreadable stretch(es) skipped" if gaps else ""
        print(f"{table}: {rows} rows copied{note}")
    for table in report.unreadable_tables:
        print(f"{table}: unreadable, nothing copied")
    print(f"new spool: {report.destination} (the old one was not changed)")
    return 0


def _dead_list(_args: argparse.Namespace, settings: RelaySettings) -> int:
    spool, queue = open_spool(settings)
    try:
        letters = queue.dead_letters()
    finally:
        spool.close()
    now = utc_now()
    for letter in letters:
        age = (now - letter.failed_at).total_seconds()
        print(f"{letter.id}\t{letter.key}\t{age:.0f}s\t{letter.error}")
    print(f"{len(letters)} dead letters")
    return 0


def _dead_retry(args: argparse.Namespace, settings: RelaySettings) -> int:
    ids = _selected_ids(args)
    spool, queue = open_spool(settings)
    try:
        moved = queue.retry_dead_letters(ids)
    finally:
        spool.close()
    print(f"{moved} dead letters back in the queue")
    return 0


def _dead_purge(args: argparse.Namespace, settings: RelaySettings) -> int:
    ids = _selected_ids(args)
    before = utc_now() - args.older_than if args.older_than is not None else None
    spool, queue = open_spool(settings)
    try:
        purged = queue.purge_dead_letters(ids, failed_before=before)
    finally:
        spool.close()
    print(f"{purged} dead letters purged")
    return 0
