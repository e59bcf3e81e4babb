"""Running the relay: `migrate`, `serve`, `drain`, `demo`, and the `dispatcher` and
`platform` roles that `relay serve` starts (or systemd/Kubernetes runs as units of their own)."""

from __future__ import annotations

import argparse

from sqlalchemy.engine import make_url

from relay.cli.support import CommandError
from relay.db import migrations
from relay.db.engine import display_url
from relay.demo.run import run_demo
from relay.runtime.dispatcher_process import run_dispatcher
from relay.runtime.drain_process import run_drain, stop_on_signals
from relay.runtime.platform_process import run_platform
from relay.runtime.service import serve
from relay.runtime.wiring import execution_log
from relay.settings import RelaySettings
from spool import flush


def add_service_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = commands.add_parser("migrate", help="apply database migrations (Alembic head)")
    migrate.set_defaults(handler=_migrate)

    serve_command = commands.add_parser(
        "serve",
        help="run the relay: intake, deliveries, execution log",
        description="Serves POST /v1/events until SIGTERM/SIGINT.",
    )
    serve_command.add_argument("--host", help="listen address (default RELAY_HOST, 127.0.0.1)")
    serve_command.add_argument("--port", type=_port, help="listen port (default RELAY_PORT, 8080)")
    serve_command.add_argument(
        "--intake-only",
        action="store_true",
        help="do not start the dispatcher and drain: they run as units of their own "
        "(`relay dispatcher`, `relay drain`)",
    )
    serve_command.set_defaults(handler=_serve)

    demo = commands.add_parser(
        "demo", help="run the whole loop locally and show what the spool saved the database"
    )
    demo.add_argument("--events", type=_count, default=300, help="events to send (default 300)")
    demo.add_argument("--companies", type=_count, default=3, help="companies (default 3)")
    demo.set_defaults(handler=_demo)

    drain = commands.add_parser(
        "drain",
        help="move spooled execution logs into the database",
        description="Without --once: run the drain job until SIGTERM/SIGINT, then flush.",
    )
    drain.add_argument(
        "--once",
        action="store_true",
        help="drain everything pending now, ignoring batch size and age, then exit",
    )
    drain.add_argument(
        "--deadline",
        type=_positive_seconds,
        default=300.0,
        help="with --once: give up after this many seconds (default 300)",
    )
    # `relay serve` runs the drain as its child with these; not for people (hidden).
    drain.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    drain.add_argument("--wake-fd", type=int, help=argparse.SUPPRESS)
    drain.set_defaults(handler=_drain)

    dispatcher = commands.add_parser(
        "dispatcher",
        help="deliver the events in the spool's inbox",
        description="Runs the deliveries until SIGTERM/SIGINT: `relay serve` starts it, or "
        "it runs as a unit of its own beside `relay serve --intake-only`.",
    )
    # `relay serve` runs the dispatcher as its child with these; not for people (hidden).
    dispatcher.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    dispatcher.add_argument("--wake-fd", type=int, help=argparse.SUPPRESS)
    dispatcher.add_argument("--drain-wake-fd", type=int, help=argparse.SUPPRESS)
    dispatcher.set_defaults(handler=_dispatcher)

    platform = commands.add_parser(
        "platform",
        help="receive the companies' events from the platform (3C Plus, socket.io)",
        description="Keeps one socket.io stream per company with a platform token and an "
        "active webhook, until SIGTERM/SIGINT: `relay serve` starts it, or it runs as a unit "
        "of its own beside `relay serve --intake-only`.",
    )
    # `relay serve` runs it as its child with these; not for people (hidden).
    platform.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    platform.add_argument("--dispatcher-wake-fd", type=int, help=argparse.SUPPRESS)
    platform.set_defaults(handler=_platform)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"not a count from 1 to 100000: {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def _demo(args: argparse.Namespace, _settings: RelaySettings) -> int:
    print(run_demo(events=args.events, companies=args.companies).render())
    return 0


def _serve(args: argparse.Namespace, settings: RelaySettings) -> int:
    if make_url(settings.database_url).get_backend_name() == "sqlite":
        _migrate(args, settings)  # the embedded default migrates itself
    elif not migrations.is_current(settings.database_url):
        raise CommandError("the database schema is not current: run `relay migrate` first")
    serve(
        settings,
        args.host or settings.host,
        settings.port if args.port is None else args.port,
        intake_only=args.intake_only,
    )
    return 0


def _dispatcher(args: argparse.Namespace, settings: RelaySettings) -> int:
    run_dispatcher(
        settings,
        wake_fd=args.wake_fd,
        drain_wake_fd=args.drain_wake_fd,
        parent_pid=args.parent_pid,
    )
    return 0


def _platform(args: argparse.Namespace, settings: RelaySettings) -> int:
    run_platform(settings, dispatcher_wake_fd=args.dispatcher_wake_fd, parent_pid=args.parent_pid)
    return 0


def _migrate(_args: argparse.Namespace, settings: RelaySettings) -> int:
    try:
        migrations.upgrade(settings.database_url)
    except Exception as exc:  # alembic/SQLAlchemy errors: report, do not trace
        raise CommandError(f"migration failed: {' '.join(str(exc).split())}") from exc
    print(f"database migrated to head: {display_url(settings.database_url)}")
    return 0


def _drain(args: argparse.Namespace, settings: RelaySettings) -> int:
    if not args.once:
        run_drain(settings, stop_on_signals(), wake_fd=args.wake_fd, parent_pid=args.parent_pid)
        return 0
    with execution_log(settings) as log:
        report = flush(log.drainer, args.deadline)
        dead = log.queue.stats().dead_letters
    print(
        f"drained {report.rows_written} rows; {report.rows_left} left in the spool; "
        f"{dead} dead letters"
    )
    if report.rows_left:
        raise CommandError(
            f"{report.rows_left} rows could not be written and stay in the spool "
            "(see the log above for why)"
        )
    return 0
