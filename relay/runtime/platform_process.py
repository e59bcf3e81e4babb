"""The platform role (relay/intake/platform) in a process of its own, beside intake.

A flood of platform events costs this process's CPU and GIL, not intake's: `POST /v1/events`
keeps its latency whatever the streams bring. `relay serve` starts `relay platform` as a
child with the write end of the dispatcher's wake-up pipe, so a stored event is delivered at
once; run as a unit of its own (beside `relay serve --intake-only`), it leaves the dispatcher
to its one-second poll. It dies with intake's process (a child's PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from relay.errors import StartupError
from relay.inbox.store import EventInbox
from relay.intake.platform.locks import StreamLocks
from relay.intake.platform.role import PlatformRole
from relay.registry.cache import Registry
from relay.runtime.heap import freeze_startup_heap
from relay.runtime.supervisor import ChildProcess, become_child
from relay.runtime.wakeup import send_wake
from relay.runtime.wiring import fresh_registry, open_database, open_spool, stop_on_loop_signals
from relay.settings import RelaySettings

log = logging.getLogger(__name__)


def platform_role(
    settings: RelaySettings,
    engine: Engine,
    registry: Registry,
    inbox: EventInbox,
    on_accepted: Callable[[], None],
) -> PlatformRole:
    """The role as the settings say; with `RELAY_PLATFORM_LOCKS`, holding only the
    companies whose advisory lock it wins."""
    locks = None
    if settings.platform_locks:
        try:
            locks = StreamLocks(engine)
        except ValueError as exc:
            raise StartupError(str(exc)) from exc
    return PlatformRole(
        engine,
        registry,
        inbox,
        cluster_urls=settings.cluster_urls(),
        refused_retry_seconds=settings.platform_refused_retry_seconds,
        on_accepted=on_accepted,
        locks=locks,
    )


def platform_child(
    settings: RelaySettings, *, metrics_directory: Path, dispatcher_wake_fd: int
) -> ChildProcess:
    """Parent side: `relay platform` as a supervised child that wakes the dispatcher."""
    return ChildProcess(
        "platform",
        ["platform", "--dispatcher-wake-fd", str(dispatcher_wake_fd)],
        metrics_directory=metrics_directory,
        stop_deadline=settings.shutdown_grace_seconds,
        pass_fds=(dispatcher_wake_fd,),
    )


def run_platform(
    settings: RelaySettings,
    *,
    dispatcher_wake_fd: int | None = None,
    parent_pid: int | None = None,
) -> None:
    """`relay platform`: keep the streams until SIGTERM/SIGINT. As `relay serve`'s child
    (`parent_pid`) it dies with its parent, skips the spool check intake just made, and
    yields the CPU to intake as the dispatcher does (`RELAY_BACKGROUND_NICE`): a burst waits
    in the sockets' buffers, a caller of `POST /v1/events` waits on its answer."""
    if parent_pid is not None:
        become_child(parent_pid, settings.background_nice)
    asyncio.run(_serve_streams(settings, dispatcher_wake_fd, check_integrity=parent_pid is None))


async def _serve_streams(
    settings: RelaySettings, dispatcher_wake_fd: int | None, *, check_integrity: bool
) -> None:
    spool, _outbox = open_spool(settings, check_integrity=check_integrity)
    engine = open_database(settings)
    try:
        inbox = EventInbox(spool, idempotency_window=timedelta(hours=settings.idempotency_hours))
        registry = Registry(engine)
        wake = _waker(dispatcher_wake_fd)
        role = platform_role(settings, engine, registry, inbox, wake)
        stop = stop_on_loop_signals()
        async with fresh_registry(registry, settings):
            await role.start()
            log.info("platform streams running (pid %d)", os.getpid())
            freeze_startup_heap("platform")
            await stop.wait()
            await role.stop()
    finally:
        spool.close()
        engine.dispose()


def _waker(fd: int | None) -> Callable[[], None]:
    if fd is None:
        return lambda: None  # a unit of its own: the dispatcher polls every second
    return lambda: send_wake(fd)
