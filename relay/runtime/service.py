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
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Protocol

import anyio.to_thread
import uvicorn
from starlette.applications import Starlette

from relay.accounts.authenticator import Authenticator
from relay.api.app import api_routes
from relay.db.engine import display_url
from relay.delivery.worker import DeliveryWorker
from relay.errors import StartupError
from relay.inbox.store import EventInbox
from relay.intake.app import IntakeState, create_intake_app
from relay.intake.batching import AcceptBatcher
from relay.ops.health import Readiness
from relay.ops.metrics import (
    DrainMetrics,
    SpoolCollector,
    exposition_registry,
    multiprocess_directory,
)
from relay.ops.routes import ops_routes
from relay.registry.cache import Registry, keep_fresh
from relay.runtime.dispatcher_process import DispatcherProcess
from relay.runtime.drain_process import stop_drain
from relay.runtime.heap import freeze_startup_heap
from relay.runtime.supervisor import ChildProcess
from relay.runtime.wiring import execution_drainer, open_database, open_spool
from relay.settings import RelaySettings
from spool import DrainScheduler, utc_now

log = logging.getLogger(__name__)

IDEMPOTENCY_SWEEP = timedelta(hours=1)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_ANNOUNCE_SECONDS = 1.0


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


class InProcessDrain:
    """The drain job in this process (tests, `relay demo`)."""

    def __init__(self, scheduler: DrainScheduler, settings: RelaySettings) -> None:
        self.scheduler, self._settings = scheduler, settings

    async def start(self) -> None:
        self.scheduler.start()

    async def stop(self) -> None:
        await anyio.to_thread.run_sync(stop_drain, self.scheduler, self._settings)


class RelayService:
    """Owns every long-lived part of a running relay.

    Deliveries and the drain run in this process (tests, `relay demo`), or, with
    `separate_processes` (`relay serve`), in two children, `relay dispatcher` and `relay
    drain`: intake keeps a core and a GIL to itself, and the drain does not slow the
    dispatcher down. They start in order and stop in order: the dispatcher's last outcomes
    are in the spool before the drain's final flush.
    """

    def __init__(self, settings: RelaySettings, *, separate_processes: bool = False) -> None:
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
        self.parts: list[BackgroundPart]
        child_metrics: Path | None = None
        if separate_processes:
            child_metrics = multiprocess_directory(settings.spool_path)
            dispatcher = DispatcherProcess(settings, metrics_directory=child_metrics)
            drain = ChildProcess(
                "drain",
                ["drain"],
                metrics_directory=child_metrics,
                stop_deadline=settings.shutdown_flush_seconds,
            )
            self.children = [dispatcher.child, drain]
            self.parts = [dispatcher, drain]
            wake = dispatcher.wake
        else:
            self.worker = DeliveryWorker(settings, self.inbox, self.outbox, self.registry)
            self.drain = InProcessDrain(
                DrainScheduler(
                    execution_drainer(self.outbox, self.engine, settings),
                    interval_seconds=settings.drain_interval_seconds,
                    on_cycle=DrainMetrics().record,
                ),
                settings,
            )
            self.parts = [self.worker, self.drain]
            wake = self.worker.wake
        self.metrics = exposition_registry(
            SpoolCollector(self.spool, self.inbox.queue, self.outbox),
            child_directory=child_metrics,
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
        management = api_routes(self.engine, authenticator, max_body_bytes=settings.max_body_bytes)
        self.app = create_intake_app(
            self.intake,
            [*ops_routes(readiness, self.metrics), *management],
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


def serve(settings: RelaySettings, host: str, port: int) -> None:
    """Run the relay until SIGTERM/SIGINT."""
    check_bind_address(host, settings.intake_token is not None)
    service = RelayService(settings, separate_processes=True)
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
