"""A relay under test, run one of two ways, both serving real HTTP on 127.0.0.1.

- `InProcessRelay`: `RelayService` under uvicorn in a thread of the test process, deliveries
  and the drain in-process too, so a test can look inside (`service`, `worker`).
- `RelayProcess`: a real `relay serve` (intake plus its dispatcher and drain children), to
  SIGKILL, SIGTERM and restart from outside on the same port and spool.

Both take their settings by `RelaySettings` name and post events the same way (`post`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from relay.delivery.worker import DeliveryWorker
from relay.runtime.service import RelayService
from relay.settings import RelaySettings
from tests.support import http_calls
from tests.support.environment import variable
from tests.support.ports import reserved_port
from tests.support.receivers import ThreadedServer
from tests.support.relay_command import RELAY_SCRIPT
from tests.support.relay_data import sample_event
from tests.support.waiting import eventually

EVENT = "call-history-was-created"


class RelayEndpoint:
    """What a test sends a relay: events on `POST /v1/events` at `url`."""

    @property
    def url(self) -> str:
        raise NotImplementedError

    def post(
        self,
        company: uuid.UUID,
        data: Mapping[str, Any] | None = None,
        *,
        event: str = EVENT,
        event_id: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "company_id": str(company),
            "event": event,
            "data": sample_event() if data is None else dict(data),
        }
        if event_id is not None:
            body["id"] = event_id
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return http_calls.post(
            f"{self.url}/v1/events",
            content=json.dumps(body),
            headers={"content-type": "application/json", **headers},
            timeout=10,
        )


class InProcessRelay(RelayEndpoint):
    """A `RelayService` served by uvicorn in a thread of the test process."""

    def __init__(self, settings: RelaySettings) -> None:
        self.service = RelayService(settings)
        self.server = ThreadedServer(self.service.app, lifespan="on")

    def start(self) -> InProcessRelay:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def worker(self) -> DeliveryWorker:
        """The in-process deliveries (the dispatcher runs inside the relay's process)."""
        assert self.service.worker is not None
        return self.service.worker


class RelayProcess(RelayEndpoint):
    """One `relay serve` slot: started, SIGKILLed and restarted on the same port and spool.

    Its stderr goes to a log file (appended across restarts), never to a pipe nobody reads.
    """

    def __init__(self, env: dict[str, str], log_path: Path, *, port: int | None = None) -> None:
        self.env = env
        self.port = port or reserved_port()  # kept from this start to its last restart
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self._log_offset = 0

    @property
    def spool_path(self) -> Path:
        return Path(self.env[variable("spool_path")])

    def use_spool(self, path: Path) -> None:
        """Start on the spool at `path` from the next start on."""
        self.env[variable("spool_path")] = str(path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30) -> RelayProcess:
        """Start `relay serve` and wait until uvicorn listens (or the process ended)."""
        assert not self.alive, "already running"
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [RELAY_SCRIPT, "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        self.starts += 1
        started = eventually(
            lambda: "Uvicorn running" in self.log_since_start() or not self.alive, timeout
        )
        if not started or not self.alive:
            self.kill()
            raise AssertionError(
                f"relay did not start within {timeout} s:\n{self.log_since_start()[-3000:]}"
            )
        return self

    def dispatching(self) -> bool:
        """Whether the dispatcher process of this start runs its loop (it says so in the log):
        from then on deliveries start as soon as they are due."""
        return "dispatcher running" in self.log_since_start()

    def log_since_start(self) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def log_text(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL (a real crash) and reap."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.kills += 1
        if self.process is not None:
            self.process.wait(30)

    def terminate(self, timeout: float = 60) -> tuple[int, float]:
        """SIGTERM; return (exit status, seconds until it exited)."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"relay still running {timeout} s after SIGTERM") from None
        return code, time.monotonic() - started

    def url_getter(self) -> Callable[[], str]:
        return lambda: self.url

    def stop_cleanly(self) -> float:
        """SIGTERM and require exit 0 (the final clean shutdown of a scenario)."""
        code, seconds = self.terminate()
        assert code == 0, f"relay exited {code} on SIGTERM:\n{self.log_since_start()[-3000:]}"
        return seconds
