"""`relay serve`: the intake app, the registry refresh and the deliveries, wired.

Start: load the registry, start the dispatcher (it drains leftovers and resumes deliveries
left in the inbox). Stop (SIGTERM/SIGINT): answer 503 to new events, give attempts in flight
a deadline (the rest stay in the inbox), flush the execution log within its deadline, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import Protocol

import anyio.to_thread
import uvicorn
from starlette.applications import Starlette

from relay.accounts.authenticator import Authenticator
from relay.api.app import api_routes
from relay.api.routing import SpoolAccess
from relay.console.pages import ConsoleContext, console_routes
from relay.console.sessions import SessionStore
from relay.db.engine import display_url
from relay.delivery.worker import DeliveryWorker
from relay.errors import StartupError
from relay.inbox.recovery_jobs import RecoveryJobs
from relay.inbox.store import EventInbox
from relay.intake.app import IntakeState, create_intake_app
from relay.intake.batching import AcceptBatcher
from relay.ops.health import Readiness
from relay.ops.metrics import (
    SpoolCollector,
    exposition_registry,
    fresh_metrics_directory,
    shared_metrics_directory,
)
from relay.ops.routes import ops_routes
from relay.registry.cache import Registry, keep_fresh
from relay.runtime.dispatcher_process import delivery_worker, dispatcher_child
from relay.runtime.drain_process import DrainRole, drain_child
from relay.runtime.heap import freeze_startup_heap
from relay.runtime.platform_process import platform_child, platform_role
from relay.runtime.recovery_role import RecoveryRole
from relay.runtime.supervisor import ChildProcess
from relay.runtime.wakeup import WakePipe
from relay.runtime.wiring import open_database, open_spool
from relay.settings import RelaySettings
from spool import DrainScheduler, utc_now

log = logging.getLogger(__name__)

IDEMPOTENCY_SWEEP = timedelta(hours=1)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_ANNOUNCE_SECONDS = 1.0
# An API request computes in a worker thread (SQL, JSON) while intake answers events on the
# event loop: the loop must get the GIL back within a fraction of a millisecond, not after
# CPython's default 5 ms, or each event waits for the API thread's slices.
INTAKE_SWITCH_INTERVAL_SECONDS = 0.0005


def check_bind_address(host: str, token_configured: bool) -> None:
    """Without an intake token, serve only on loopback; anywhere else refuse to start."""
    if token_configured:
        return
    if host == "localhost" or _is_loopback(host):
        log.warning("RELAY_INTAKE_TOKEN is not set: serving on loopback (%s) only", host)
        return
    raise StartupError(
        f"refusing to listen on {host} without RELAY_INTAKE_TOKEN: set a token, "
        "or bind to 127.0.0.1"
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BackgroundPart(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Layout(Enum):
    """Where the dispatcher and drain roles run, beside intake."""

    IN_PROCESS = "in this process"  # tests, `relay demo`
    CHILDREN = "in child processes"  # `relay serve`
    INTAKE_ONLY = "elsewhere"  # `relay serve --intake-only`: units of their own


class InProcessDrain:
    """The drain role in this process (tests, `relay demo`): started and flushed from the
    event loop, its upkeep in a thread of its own."""

    def __init__(self, settings: RelaySettings, *, wake_fd: int) -> None:
        # Intake opened (and checked) the spool a moment ago.
        self.role = DrainRole(settings, threading.Event(), wake_fd=wake_fd, check_integrity=False)
        self._upkeep = threading.Thread(target=self.role.keep_up, name="drain-upkeep", daemon=True)

    @property
    def scheduler(self) -> DrainScheduler:
        return self.role.scheduler

    async def start(self) -> None:
        await anyio.to_thread.run_sync(self.role.start)
        self._upkeep.start()

    async def stop(self) -> None:
        self.role.stopping.set()
        if self._upkeep.ident is not None:
            await anyio.to_thread.run_sync(self._upkeep.join)
        await anyio.to_thread.run_sync(self.role.stop)


class RelayService:
    """Owns every long-lived part of a running relay.

    Intake runs here; the dispatcher and drain roles run beside it as the `layout` says: in
    this process (tests, `relay demo`), in two children, `relay dispatcher` and `relay drain`
    (`relay serve`: intake keeps a core and a GIL to itself, and the drain does not slow the
    dispatcher down), or as units of their own (`--intake-only`). They start in order and stop
    in order: the dispatcher's last outcomes are in the spool before the drain's final flush.
    The drain is woken through a pipe in every layout but the last, in this process as across
    processes.
    """

    def __init__(self, settings: RelaySettings, *, layout: Layout = Layout.IN_PROCESS) -> None:
        self.settings = settings
        self.spool, self.outbox = open_spool(settings)
        self.inbox = EventInbox(
            self.spool, idempotency_window=timedelta(hours=settings.idempotency_hours)
        )
        self.engine = open_database(settings)
        self.registry = Registry(self.engine)
        self.worker: DeliveryWorker | None = None
        self.drain: InProcessDrain | None = None
        self.children: list[ChildProcess] = []
        self.parts: list[BackgroundPart] = []
        self.pipes: list[WakePipe] = []
        wake: Callable[[], None] = _polled_anyway
        role_metrics: Path | None = None
        if layout is Layout.CHILDREN:
            role_metrics = fresh_metrics_directory(settings.spool_path)
            dispatcher_wakes, drain_wakes = WakePipe(), WakePipe()
            self.pipes = [dispatcher_wakes, drain_wakes]
            self.children = [
                dispatcher_child(
                    settings,
                    metrics_directory=role_metrics,
                    wake_fd=dispatcher_wakes.read_fd,
                    drain_wake_fd=drain_wakes.write_fd,
                ),
                drain_child(settings, metrics_directory=role_metrics, wake_fd=drain_wakes.read_fd),
            ]
            if settings.platform:  # first: it stops before the dispatcher
                self.children.insert(
                    0,
                    platform_child(
                        settings,
                        metrics_directory=role_metrics,
                        dispatcher_wake_fd=dispatcher_wakes.write_fd,
                    ),
                )
            self.parts = list(self.children)
            wake = dispatcher_wakes.wake
        elif layout is Layout.IN_PROCESS:
            drain_wakes = WakePipe()
            self.pipes = [drain_wakes]
            self.worker = delivery_worker(
                settings, self.inbox, self.outbox, self.registry, drain_wake_fd=drain_wakes.write_fd
            )
            self.drain = InProcessDrain(settings, wake_fd=drain_wakes.read_fd)
            recovery = RecoveryRole(self.engine, self.inbox, self.outbox)
            self.parts = [self.worker, recovery, self.drain]
            wake = self.worker.wake
            if settings.platform:
                self.parts.insert(
                    0, platform_role(settings, self.engine, self.registry, self.inbox, wake)
                )
        else:
            role_metrics = shared_metrics_directory(settings.spool_path)
        self.metrics = exposition_registry(
            SpoolCollector(self.spool, self.inbox.queue, self.outbox), role_directory=role_metrics
        )
        token = settings.intake_token.get_secret_value() if settings.intake_token else None
        authenticator = Authenticator(self.engine)  # API tokens, for the API and intake
        self.intake = IntakeState(
            accepts=AcceptBatcher(self.inbox),
            registry=self.registry,
            clock=utc_now,
            max_body_bytes=settings.max_body_bytes,
            token=token,
            on_accepted=wake,
            authenticator=authenticator,
        )
        readiness = Readiness(
            accepting=lambda: self.intake.accepting,
            registry_loaded=lambda: self.intake.registry.loaded,
            spool=self.spool,
            metrics=self.metrics,
            children_down=self._children_down,
            max_drain_failure_seconds=settings.ready_max_drain_failure_seconds,
        )
        spool_access = SpoolAccess(self.outbox, self.inbox, RecoveryJobs(self.spool), wake)
        management = api_routes(
            self.engine, spool_access, authenticator, max_body_bytes=settings.max_body_bytes
        )
        sessions = SessionStore(utc_now, settings.console_session_minutes)
        console = console_routes(
            ConsoleContext(self.engine, spool_access, authenticator, sessions, readiness.drain)
        )
        self.app = create_intake_app(
            self.intake,
            [*ops_routes(readiness, self.metrics), *management, *console],
            lifespan=self._lifespan,
        )

    def _children_down(self) -> list[str]:
        return [child.name for child in self.children if child.pid is None]

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        settings = self.settings
        await anyio.to_thread.run_sync(self.registry.refresh)
        for part in self.parts:
            await part.start()
        background = [
            asyncio.create_task(
                keep_fresh(
                    self.registry,
                    reload_seconds=settings.registry_refresh_seconds,
                    check_seconds=settings.registry_check_seconds,
                ),
                name="registry",
            ),
            asyncio.create_task(self._sweep_idempotency_keys(), name="idempotency"),
        ]
        log.info(
            "relay serving: %d deliveries waiting in the inbox, %d log rows in the spool; "
            "execution log -> %s",
            await anyio.to_thread.run_sync(self.inbox.queue.count),
            self.outbox.stats().pending,
            display_url(settings.database_url),
        )
        try:
            yield
        finally:
            await self._shutdown(background)

    async def _shutdown(self, background: list[asyncio.Task[None]]) -> None:
        self.intake.accepting = False
        for part in self.parts:
            await part.stop()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        for pipe in self.pipes:
            pipe.close()
        self.intake.accepts.close()
        self.spool.close()
        self.engine.dispose()

    async def _sweep_idempotency_keys(self) -> None:
        while True:
            await asyncio.sleep(IDEMPOTENCY_SWEEP.total_seconds())
            removed = await anyio.to_thread.run_sync(lambda: self.inbox.seen.expire(utc_now()))
            log.debug("forgot %d intake ids older than the idempotency window", removed)


class _RelayServer(uvicorn.Server):
    """Turns intake away (503) from the first stop signal on, stops gracefully, exits 0."""

    def __init__(self, config: uvicorn.Config, intake: IntakeState) -> None:
        super().__init__(config)
        self._intake = intake

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # after the lifespan's start-up: the relay is up
        freeze_startup_heap("intake")

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: answer 503 for `STOP_ANNOUNCE_SECONDS` (clients and load balancers
        see a clear refusal, not a closed port), then stop. A second signal stops at once."""
        if not self._intake.accepting:
            super().handle_exit(sig, frame)
            return
        self._intake.accepting = False
        log.info("stopping: new events are answered 503 from now on")
        timer = threading.Timer(STOP_ANNOUNCE_SECONDS, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the stop signal after shutdown (exit status -15); a relay that
        # flushed and stopped cleanly should exit 0, so handle the signals ourselves.
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _polled_anyway() -> None:
    """No dispatcher to wake here: it runs as a unit of its own, and polls every second."""


def serve(settings: RelaySettings, host: str, port: int, *, intake_only: bool = False) -> None:
    """Run the relay until SIGTERM/SIGINT; with `intake_only`, without its dispatcher and
    drain (each runs as a unit of its own)."""
    check_bind_address(host, settings.intake_token is not None)
    sys.setswitchinterval(INTAKE_SWITCH_INTERVAL_SECONDS)
    service = RelayService(settings, layout=Layout.INTAKE_ONLY if intake_only else Layout.CHILDREN)
    config = uvicorn.Config(
        service.app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # Named, not "auto": without httptools uvicorn silently falls back to h11, whose
        # pure-Python parsing cost intake 15-25% more CPU per event (speed-corrected runs of
        # 2026-12-01), headroom that intake latency needs.
        http="httptools",
    )
    _RelayServer(config, service.intake).run()
