"""`relay serve`: the intake app, the dispatcher, the registry refresh and the drain, wired.

Start: load the registry, drain leftovers, resume deliveries left in the inbox. Stop
(SIGTERM/SIGINT): answer 503 to new events, give attempts in flight a deadline (the rest stay
in the inbox), flush the execution log within its deadline, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from types import FrameType

import anyio.to_thread
import uvicorn
from starlette.applications import Starlette

from relay.components import execution_drainer, open_database, open_spool
from relay.database import display_url
from relay.dispatcher import DispatchConfig, Dispatcher
from relay.http_clients import HostClients
from relay.inbox import EventInbox
from relay.intake import IntakeState, create_intake_app
from relay.registry import Registry
from relay.settings import RelaySettings
from spool import DrainScheduler, utc_now

log = logging.getLogger(__name__)

IDEMPOTENCY_SWEEP = timedelta(hours=1)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_ANNOUNCE_SECONDS = 1.0


class StartupError(Exception):
    """The relay refuses to start as configured (reported as one line, exit 2)."""


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


class RelayService:
    """Owns every long-lived part of a running relay."""

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self.spool, self.outbox = open_spool(settings)
        self.inbox = EventInbox(
            self.spool, idempotency_window=timedelta(hours=settings.idempotency_hours)
        )
        self.engine = open_database(settings)
        self.registry = Registry(self.engine)
        self.drain = DrainScheduler(
            execution_drainer(self.outbox, self.engine, settings),
            interval_seconds=settings.drain_interval_seconds,
        )
        self.clients = HostClients(connections_per_host=settings.max_per_host)
        self.dispatcher = Dispatcher(
            self.inbox,
            self.outbox,
            self.registry,
            self.clients,
            DispatchConfig(
                timeout_seconds=settings.http_timeout_seconds,
                max_in_flight=settings.max_in_flight,
                max_per_host=settings.max_per_host,
                retry=settings.retry_policy(),
                is_logged=settings.is_logged,
                log_payload_max_bytes=settings.log_payload_max_bytes,
            ),
        )
        token = settings.intake_token.get_secret_value() if settings.intake_token else None
        self.intake = IntakeState(
            inbox=self.inbox,
            registry=self.registry,
            clock=utc_now,
            max_body_bytes=settings.max_body_bytes,
            token=token,
            on_accepted=self.dispatcher.wake,
        )
        self.app: Starlette = create_intake_app(self.intake)
        self.app.router.lifespan_context = self._lifespan

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(self.registry.refresh)
        self.drain.start()
        background = [
            asyncio.create_task(self.dispatcher.run(), name="dispatcher"),
            asyncio.create_task(self._keep_registry_fresh(), name="registry"),
            asyncio.create_task(self._sweep_idempotency_keys(), name="idempotency"),
        ]
        log.info(
            "relay serving: %d deliveries waiting in the inbox, %d log rows in the spool; "
            "execution log -> %s",
            await anyio.to_thread.run_sync(self.inbox.queue.count),
            self.outbox.stats().pending,
            display_url(self.settings.database_url),
        )
        try:
            yield
        finally:
            await self._shutdown(background)

    async def _shutdown(self, background: list[asyncio.Task[None]]) -> None:
        self.intake.accepting = False
        handed_back = await self.dispatcher.stop(self.settings.shutdown_grace_seconds)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await self.clients.aclose()
        flush = await anyio.to_thread.run_sync(
            lambda: self.drain.shutdown(self.settings.shutdown_flush_seconds)
        )
        left = await anyio.to_thread.run_sync(self.inbox.queue.count)
        log.info(
            "relay stopped: %d deliveries wait in the inbox (%d handed back in flight); "
            "execution log flushed %d rows, %d stay in the spool",
            left,
            handed_back,
            flush.rows_written,
            flush.rows_left,
        )
        self.spool.close()
        self.engine.dispose()

    async def _keep_registry_fresh(self) -> None:
        settings = self.settings
        checks_per_reload = max(
            1, round(settings.registry_refresh_seconds / settings.registry_check_seconds)
        )
        check = 0
        while True:
            await asyncio.sleep(settings.registry_check_seconds)
            check += 1
            if not self.registry.loaded or check % checks_per_reload == 0:
                await anyio.to_thread.run_sync(self.registry.refresh)
            else:
                await anyio.to_thread.run_sync(self.registry.refresh_if_changed)

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
    service = RelayService(settings)
    config = uvicorn.Config(
        service.app, host=host, port=port, log_config=None, access_log=False, lifespan="on"
    )
    _RelayServer(config, service.intake).run()
