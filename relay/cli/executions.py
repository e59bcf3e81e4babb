"""Reading the execution log and resending from the command line: `relay executions ...`,
`relay messages ...`, `relay webhooks recover` and `relay jobs ...`.

The same functions as the API's (relay/execution_log/search.py, relay/inbox/...): every
option is read by them, so a bad one is the same one-line error (exit 2) as the API's 422.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Engine

from relay.cli.support import CommandError, database
from relay.errors import InputError
from relay.execution_log.errors import classify
from relay.execution_log.inputs import parse_time, parse_uuid
from relay.execution_log.rows import ExecutionItem
from relay.execution_log.search import ExecutionQuery, get_execution, search_executions
from relay.inbox.recovery import BATCH_MESSAGES, RecoveryRunner, job_status, start_recovery
from relay.inbox.recovery_jobs import RecoveryJobs
from relay.inbox.resend import resend
from relay.inbox.store import EventInbox
from relay.inbox.timeline import message_timeline
from relay.runtime.wiring import open_spool
from relay.settings import RelaySettings
from spool import DurableQueue, SpoolDatabase

T = TypeVar("T")
RUN_PATIENCE_SECONDS = 60.0  # `relay jobs run` gives up after this long without progress
# `relay executions search` option -> search parameter
SEARCH_OPTIONS = {
    "phone": "phone",
    "company": "company_id",
    "status": "status",
    "event_type": "event_type",
    "webhook": "webhook_id",
    "message": "message_id",
    "since": "since",
    "until": "until",
    "limit": "limit",
    "cursor": "cursor",
}
TABLE_COLUMNS = ("created_at", "status", "http", "attempt", "phone", "company", "message", "")


def add_execution_commands(commands: Any, webhook_commands: Any) -> None:
    """`relay executions|messages|jobs ...`, and `recover` among `webhook_commands`."""
    executions = commands.add_parser("executions", help="search the execution log")
    sub = executions.add_subparsers(dest="executions_command", required=True, metavar="COMMAND")
    search = sub.add_parser(
        "search",
        help="log rows newest first, rows still in the spool included (pending)",
        description="Rows of the last week unless --since says otherwise. Every option "
        "narrows the search; times are ISO-8601 with an offset (2026-12-03T10:00:00-03:00).",
    )
    search.add_argument("--phone", metavar="N", help="as dialled; only its digits count")
    search.add_argument("--company", metavar="ID")
    search.add_argument("--status", metavar="S", help="success or failed")
    search.add_argument("--event-type", metavar="NAME")
    search.add_argument("--webhook", metavar="ID")
    search.add_argument("--message", metavar="MESSAGE_ID", help="the webhook-id")
    search.add_argument("--since", metavar="ISO")
    search.add_argument("--until", metavar="ISO")
    search.add_argument("--limit", metavar="N", help="rows per page (default 50, at most 500)")
    search.add_argument("--cursor", metavar="C", help="the next page, as the last one said")
    search.add_argument("--json", action="store_true", help="one JSON object per row")
    search.set_defaults(handler=_search)
    show = sub.add_parser("show", help="one row with the body sent, as JSON")
    show.add_argument("id", metavar="EXECUTION_ID")
    show.set_defaults(handler=_show_execution)

    messages = commands.add_parser("messages", help="a message's deliveries; resend it")
    sub = messages.add_subparsers(dest="messages_command", required=True, metavar="COMMAND")
    show = sub.add_parser("show", help="state per webhook and every attempt, oldest first")
    show.add_argument("message_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show_message)
    again = sub.add_parser(
        "resend", help="deliver the same body again under the same webhook-id (via the inbox)"
    )
    again.add_argument("message_id")
    again.add_argument("--webhook", metavar="ID", help="another webhook of the company")
    again.set_defaults(handler=_resend)

    jobs = commands.add_parser("jobs", help="recovery jobs")
    sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")
    show = sub.add_parser("show", help="a job's state and progress, as JSON")
    show.add_argument("job_id")
    show.set_defaults(handler=_show_job)
    run = sub.add_parser(
        "run", help="work through unfinished jobs here and now, until none is left"
    )
    run.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_MESSAGES,
        metavar="N",
        help=f"failed attempts looked at per batch (default {BATCH_MESSAGES})",
    )
    run.set_defaults(handler=_run_jobs)

    recover = webhook_commands.add_parser(
        "recover",
        help="resend every message that failed for good to a webhook in a window (a job)",
    )
    recover.add_argument("webhook_id", metavar="ID")
    recover.add_argument("--since", required=True, metavar="ISO")
    recover.add_argument("--until", metavar="ISO", help="default: now")
    recover.set_defaults(handler=_recover)


@dataclass
class LogReader:
    """What the commands read and write: the database, the spool's log and inbox, jobs."""

    engine: Engine
    spool: SpoolDatabase
    outbox: DurableQueue
    inbox: EventInbox
    jobs: RecoveryJobs


@contextmanager
def log_reader(settings: RelaySettings) -> Iterator[LogReader]:
    """Open what the commands need; user mistakes and database trouble become one line."""
    spool, outbox = open_spool(settings, check_integrity=False)  # read mostly: no full check
    try:
        inbox = EventInbox(spool, idempotency_window=timedelta(hours=settings.idempotency_hours))
        with database(settings) as engine:
            yield LogReader(engine, spool, outbox, inbox, RecoveryJobs(spool))
    except InputError as exc:
        raise CommandError(str(exc)) from exc
    except sa.exc.SQLAlchemyError as exc:
        raise CommandError(
            f"database error ({classify(exc)}); has `relay migrate` been run?"
        ) from exc
    finally:
        spool.close()


def _search(args: argparse.Namespace, settings: RelaySettings) -> int:
    params = {
        name: getattr(args, option)
        for option, name in SEARCH_OPTIONS.items()
        if getattr(args, option) is not None
    }
    query = _checked(lambda: ExecutionQuery.from_params(params))
    with log_reader(settings) as reader:
        page = search_executions(reader.engine, reader.outbox, query)
    if args.json:
        for item in page.items:
            print(json.dumps(item.as_json()))
    else:
        _print_table([_row(item) for item in page.items])
    if page.next_cursor:
        print(f"more rows: add --cursor {page.next_cursor}", file=sys.stderr)
    return 0


def _row(item: ExecutionItem) -> list[str]:
    return [
        item.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        item.status or "-",
        str(item.response_status or "-"),
        str(item.attempt or "-"),
        item.phone_number or "-",
        str(item.company_id or "-"),
        item.message_id or "-",
        "pending" if item.pending else "",
    ]


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    if not rows:
        print("no rows")
        return
    table = [list(TABLE_COLUMNS), *rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(TABLE_COLUMNS))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


def _show_execution(args: argparse.Namespace, settings: RelaySettings) -> int:
    execution_id = _checked(lambda: parse_uuid("execution_id", args.id))
    with log_reader(settings) as reader:
        detail = get_execution(reader.engine, reader.outbox, execution_id)
    print(json.dumps(detail.as_json(), indent=2, ensure_ascii=False))
    return 0


def _show_message(args: argparse.Namespace, settings: RelaySettings) -> int:
    with log_reader(settings) as reader:
        story = message_timeline(reader.engine, reader.inbox, reader.outbox, args.message_id)
    if args.json:
        print(json.dumps(story.as_json(), indent=2))
        return 0
    print(f"message {story.message_id}: {story.event_type} of company {story.company_id}")
    for delivery in story.deliveries:
        due = delivery.next_attempt_at
        when = f", next attempt {due.isoformat()}" if due else ""
        state = f"{delivery.state} ({delivery.attempts} attempts{when})"
        print(f"  webhook {delivery.webhook_id}: {state}")
    _print_table([_row(attempt) for attempt in story.attempts])
    return 0


def _resend(args: argparse.Namespace, settings: RelaySettings) -> int:
    webhook_id = (
        None if args.webhook is None else _checked(lambda: parse_uuid("webhook_id", args.webhook))
    )
    with log_reader(settings) as reader:
        receipt = resend(
            reader.engine, reader.inbox, reader.outbox, args.message_id, webhook_id=webhook_id
        )
    if receipt.queued:
        print(
            f"resend of {receipt.message_id} to webhook {receipt.webhook_id} queued "
            f"(attempt {receipt.attempt})"
        )
    else:
        print(
            f"{receipt.message_id} is due for webhook {receipt.webhook_id} already "
            f"(attempt {receipt.attempt}): nothing added"
        )
    return 0


def _recover(args: argparse.Namespace, settings: RelaySettings) -> int:
    webhook_id = _checked(lambda: parse_uuid("webhook_id", args.webhook_id))
    since = _checked(lambda: parse_time("since", args.since))
    until = None if args.until is None else _checked(lambda: parse_time("until", args.until))
    with log_reader(settings) as reader:
        job = start_recovery(reader.engine, reader.jobs, webhook_id, since=since, until=until)
    print(job.id)
    return 0


def _show_job(args: argparse.Namespace, settings: RelaySettings) -> int:
    with log_reader(settings) as reader:
        job = job_status(reader.jobs, args.job_id)
    print(json.dumps(job.as_json(), indent=2))
    return 0


def _run_jobs(args: argparse.Namespace, settings: RelaySettings) -> int:
    with log_reader(settings) as reader:
        runner = RecoveryRunner(
            reader.engine, reader.inbox, reader.outbox, reader.jobs, batch_size=args.batch_size
        )
        started = {job.id for job in reader.jobs.unfinished()}
        last_progress = time.monotonic()
        pause = threading.Event()
        while reader.jobs.unfinished():
            if runner.run_once():
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > RUN_PATIENCE_SECONDS:
                raise CommandError(
                    f"no progress for {RUN_PATIENCE_SECONDS:g} s (see the log lines above); "
                    "the jobs stay unfinished: run `relay jobs run` again"
                )
            else:
                pause.wait(1.0)
        for job_id in sorted(started):
            job = job_status(reader.jobs, job_id)
            print(
                f"{job.id} {job.state}: {job.messages_sent} messages resent, "
                f"{job.rows_scanned} failed attempts looked at"
                + (f" ({job.error})" if job.error else "")
            )
    return 0


def _checked(parse: Callable[[], T]) -> T:
    """A value read by the log's own input rules; a bad one is the command's error."""
    try:
        return parse()
    except InputError as exc:
        raise CommandError(str(exc)) from exc
