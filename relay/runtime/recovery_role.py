"""Recovery jobs worked in the background by the dispatcher role (`relay webhooks recover`,
`POST /api/v1/webhooks/{id}/recover`), in whichever process that role runs.

The runner blocks on SQLite and PostgreSQL, so it has a thread of its own rather than a
place on the dispatcher's event loop, where it would delay POSTs. One dispatcher holds a
spool (its lock), so one runner works that spool's jobs.
"""

from __future__ import annotations

import threading

import anyio.to_thread
from sqlalchemy import Engine

from relay.inbox.recovery import RecoveryRunner
from relay.inbox.recovery_jobs import RecoveryJobs
from relay.inbox.store import EventInbox
from spool import DurableQueue


class RecoveryRole:
    """Starts and stops a `RecoveryRunner` thread beside the dispatcher."""

    def __init__(self, engine: Engine, inbox: EventInbox, outbox: DurableQueue) -> None:
        self.runner = RecoveryRunner(engine, inbox, outbox, RecoveryJobs(inbox.spool))
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.runner.run, args=(self._stop,), name="recovery-jobs", daemon=True
        )

    async def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        """Let the batch in hand commit (one spool transaction), then end the thread."""
        self._stop.set()
        if self._thread.ident is not None:
            await anyio.to_thread.run_sync(self._thread.join)
