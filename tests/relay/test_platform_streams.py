"""The platform's socket.io streams (relay/intake/platform), against a real python-socketio
server on 127.0.0.1 (tests/support/platform_server.py), with the real client: which events
each company gets, reconnecting through restarts without leaking a socket or duplicating an
event, refusals without a tight loop, and tokens kept out of logs and statuses.

The streams run on an asyncio loop in a thread of their own, so the test's thread can poll
what they and the server did with `eventually` (bounded waits, no sleeping as logic).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psutil
import pytest

import spool
from relay.intake.platform import connection
from relay.intake.platform.connection import safe_text, stream_url
from relay.intake.platform.streams import (
    REFUSED_SPREAD,
    Ending,
    PlatformStreams,
    StreamState,
    StreamStatus,
    StreamTarget,
    retry_delay,
)
from tests.support.platform_server import PlatformServer
from tests.support.relay_data import sample_event
from tests.support.waiting import eventually

T = TypeVar("T")

CALL = "call-history-was-created"
IDLE = "agent-is-idle"  # an event no target asks for, unless a test says so
TOKENS = {
    "tok-a-6f1d2c9e0b7a4e55": "Acme Cobrancas",
    "tok-b-0c3e8a1f5d2b4c77": "Beta Telecom",
    "tok+c/9e7d&6a5b=4f33": "Gama",  # needs quoting in a query string
}
BAD_TOKEN = "tok-revoked-4b8e2a6c1f9d"
ALL_TOKENS = [*TOKENS, BAD_TOKEN]
FAST = spool.Backoff(initial=timedelta(seconds=0.05), maximum=timedelta(seconds=0.4), jitter=0.5)


# -- fixtures: a loop thread, the platform, the streams -------------------------------------


class LoopThread:
    """An asyncio loop running in a daemon thread; `run` waits for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class Recorder:
    """What the streams handed on and told, recorded from the loop's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[tuple[uuid.UUID, str, Any]] = []
        self.states: list[tuple[uuid.UUID, StreamStatus]] = []

    async def on_event(self, company: uuid.UUID, event: str, data: Any) -> None:
        with self._lock:
            self.events.append((company, event, data))

    def on_state(self, company: uuid.UUID, status: StreamStatus) -> None:
        with self._lock:
            self.states.append((company, status))

    def of(self, company: uuid.UUID) -> list[tuple[str, Any]]:
        with self._lock:
            return [(event, data) for owner, event, data in self.events if owner == company]

    def seqs(self, company: uuid.UUID) -> list[int]:
        return [data["seq"] for _event, data in self.of(company)]


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


@pytest.fixture
def platform() -> Iterator[PlatformServer]:
    with PlatformServer(TOKENS) as server:
        yield server


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(autouse=True)
def no_token_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here: no log record of the relay or its libraries names a token. (The
    stand-in platform's own uvicorn lines quote its request URLs: it is the other side.)"""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        if record.name.startswith("uvicorn"):
            continue
        text = caplog.handler.format(record)  # with its traceback, if any
        for token in ALL_TOKENS:
            assert token not in text, f"{record.name}: {text}"


@pytest.fixture
def make_streams(loop: LoopThread, recorder: Recorder) -> Iterator[Callable[..., PlatformStreams]]:
    """PlatformStreams on the loop thread, recording into `recorder`; closed at the end."""
    made: list[PlatformStreams] = []

    def make(**options: Any) -> PlatformStreams:
        options.setdefault("backoff", FAST)

        async def build() -> PlatformStreams:
            return PlatformStreams(recorder.on_event, recorder.on_state, **options)

        made.append(loop.run(build()))
        return made[-1]

    yield make
    for streams in made:
        loop.run(streams.close())


@pytest.fixture
def streams(make_streams: Callable[..., PlatformStreams]) -> PlatformStreams:
    return make_streams()


def targets_for(
    url: str, tokens: list[str], events: frozenset[str] = frozenset({CALL})
) -> dict[uuid.UUID, StreamTarget]:
    found = {}
    for token in tokens:
        company = uuid.uuid5(uuid.NAMESPACE_URL, token)
        found[company] = StreamTarget(company, url, token, events)
    return found


def client_sockets(port: int) -> int:
    """This process's TCP sockets whose far end is `port` (the clients', not the server's)."""
    return sum(
        1
        for connection in psutil.Process().net_connections(kind="tcp")
        if connection.raddr and connection.raddr.port == port
    )


def state_of(streams: PlatformStreams, company: uuid.UUID) -> StreamState | None:
    status = streams.statuses().get(company)
    return status.state if status else None


def all_connected(platform: PlatformServer, tokens: list[str]) -> Callable[[], bool]:
    return lambda: all(platform.connected(token) == 1 for token in tokens)


def flowing(recorder: Recorder) -> Callable[[], bool]:
    """True once a few more events than now have been handed on."""
    before = len(recorder.events)
    return lambda: len(recorder.events) > before + 2


def event(seq: int) -> dict[str, Any]:
    return {**sample_event(), "seq": seq}


# -- which events each company gets ---------------------------------------------------------


def test_each_company_gets_its_own_events_once_and_in_order(
    platform: PlatformServer, streams: PlatformStreams, recorder: Recorder, loop: LoopThread
) -> None:
    tokens = list(TOKENS)
    targets = targets_for(platform.url, tokens)
    loop.run(streams.apply(targets))
    assert eventually(all_connected(platform, tokens))
    companies = {target.token: company for company, target in targets.items()}

    for seq in range(30):  # interleaved: every company, every round, one ignored event too
        for index, token in enumerate(tokens):
            assert platform.emit(token, CALL, event(seq * 10 + index)) == 1
            assert platform.emit(token, IDLE, event(-1)) == 1
    assert eventually(lambda: all(len(recorder.of(c)) == 30 for c in companies.values()))

    for index, token in enumerate(tokens):
        got = recorder.of(companies[token])
        assert [name for name, _ in got] == [CALL] * 30  # the ignored event never came
        assert [data["seq"] for _, data in got] == [seq * 10 + index for seq in range(30)]
        assert got[0][1]["callHistory"] == sample_event()["callHistory"]  # the payload whole
        status = streams.statuses()[companies[token]]
        assert status.state is StreamState.CONNECTED
        assert status.events_received == 30 and status.last_event_at is not None
        assert status.reconnects == 0


def test_changing_the_events_takes_effect_without_a_reconnect(
    platform: PlatformServer, streams: PlatformStreams, recorder: Recorder, loop: LoopThread
) -> None:
    a, b = list(TOKENS)[:2]
    targets = targets_for(platform.url, [a, b])
    loop.run(streams.apply(targets))
    assert eventually(all_connected(platform, [a, b]))
    company_a, company_b = targets

    changed = dict(targets)
    changed[company_a] = StreamTarget(company_a, platform.url, a, frozenset({CALL, IDLE}))
    changed[company_b] = StreamTarget(company_b, platform.url, b, frozenset({IDLE}))
    loop.run(streams.apply(changed))
    platform.emit(a, IDLE, event(1))
    platform.emit(b, CALL, event(2))  # no longer wanted by b
    platform.emit(b, IDLE, event(3))  # ... and this one comes after it: it is the proof
    assert eventually(lambda: recorder.seqs(company_a) == [1] and recorder.seqs(company_b) == [3])

    assert [platform.connects(a), platform.connects(b)] == [1, 1]  # no new connection
    assert [platform.disconnects(a), platform.disconnects(b)] == [0, 0]
    assert client_sockets(platform.port) == 2


def test_a_slow_consumer_gets_one_event_at_a_time_in_order_and_holds_up_no_one_else(
    platform: PlatformServer, loop: LoopThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """on_event is awaited before the connection is read on: while company a's consumer is
    stuck, its next events wait (in order, unread) and company b's go on."""
    a, b = list(TOKENS)[:2]
    targets = targets_for(platform.url, [a, b])
    company_a, company_b = targets
    gate = asyncio.Event()
    busy = {company_a: 0, company_b: 0}
    most_busy = {company_a: 0, company_b: 0}
    got: dict[uuid.UUID, list[int]] = {company_a: [], company_b: []}

    async def on_event(company: uuid.UUID, _event: str, data: Any) -> None:
        busy[company] += 1
        most_busy[company] = max(most_busy[company], busy[company])
        if company == company_a:
            await gate.wait()
        got[company].append(data["seq"])
        busy[company] -= 1

    async def build() -> PlatformStreams:
        return PlatformStreams(on_event, lambda _c, _s: None, backoff=FAST)

    streams = loop.run(build())
    try:
        loop.run(streams.apply(targets))
        assert eventually(all_connected(platform, [a, b]))
        for seq in range(20):
            platform.emit(a, CALL, event(seq))
            platform.emit(b, CALL, event(seq))
        assert eventually(lambda: len(got[company_b]) == 20)
        assert got[company_a] == [] and busy[company_a] == 1  # stuck on the first one

        loop.loop.call_soon_threadsafe(gate.set)
        assert eventually(lambda: len(got[company_a]) == 20)
        assert got[company_a] == list(range(20)) and got[company_b] == list(range(20))
        assert most_busy == {company_a: 1, company_b: 1}

        # closed while its consumer is stuck: the socket is closed all the same, in bounded time
        gate.clear()
        platform.emit(a, CALL, event(20))
        assert eventually(lambda: busy[company_a] == 1)
        monkeypatch.setattr(connection, "DISPOSE_SECONDS", 0.5)
        started = time.monotonic()
        loop.run(streams.close(), timeout=10)
        assert time.monotonic() - started < 3
        assert client_sockets(platform.port) == 0
    finally:
        loop.run(streams.close())


# -- closing ------------------------------------------------------------------------------


def test_a_removed_target_is_disconnected_and_close_leaves_nothing_open(
    platform: PlatformServer, streams: PlatformStreams, recorder: Recorder, loop: LoopThread
) -> None:
    tokens = list(TOKENS)
    targets = targets_for(platform.url, tokens)
    loop.run(streams.apply(targets))
    assert eventually(all_connected(platform, tokens))
    assert client_sockets(platform.port) == 3

    removed = next(company for company, target in targets.items() if target.token == tokens[1])
    loop.run(streams.apply({c: t for c, t in targets.items() if c != removed}))
    assert client_sockets(platform.port) == 2  # apply returns once it is closed
    assert eventually(lambda: platform.connected(tokens[1]) == 0)
    assert platform.disconnects(tokens[1]) == 1
    assert removed not in streams.statuses()
    assert recorder.states[-1][0] == removed
    assert recorder.states[-1][1].state is StreamState.DISCONNECTED
    assert [platform.connected(tokens[0]), platform.connected(tokens[2])] == [1, 1]

    loop.run(streams.close())
    assert client_sockets(platform.port) == 0
    assert eventually(lambda: all(platform.connected(token) == 0 for token in tokens))
    assert streams.statuses() == {}
    with pytest.raises(RuntimeError):
        loop.run(streams.apply(targets))


def test_a_new_token_reconnects_with_it(
    platform: PlatformServer, streams: PlatformStreams, loop: LoopThread
) -> None:
    old, new = list(TOKENS)[:2]
    company = uuid.uuid4()
    loop.run(streams.apply({company: StreamTarget(company, platform.url, old, frozenset())}))
    assert eventually(lambda: platform.connected(old) == 1)
    loop.run(streams.apply({company: StreamTarget(company, platform.url, new, frozenset())}))
    assert eventually(lambda: platform.connected(new) == 1)
    assert platform.connected(old) == 0 or eventually(lambda: platform.connected(old) == 0)
    assert client_sockets(platform.port) == 1


# -- restarts and drops -------------------------------------------------------------------


class Emitter(threading.Thread):
    """A steady stream of numbered events to each token while the server comes and goes."""

    def __init__(self, platform: PlatformServer, tokens: list[str]) -> None:
        super().__init__(daemon=True)
        self._platform, self._tokens = platform, tokens
        self._stop_event = threading.Event()
        self.sent: dict[str, list[int]] = {token: [] for token in tokens}

    def run(self) -> None:
        for seq in itertools.count():
            if self._stop_event.wait(0.005):
                return
            for token in self._tokens:
                if self._platform.emit(token, CALL, event(seq)):
                    self.sent[token].append(seq)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


def test_twenty_restarts_reconnect_every_time_without_leaks_or_duplicates(
    platform: PlatformServer, streams: PlatformStreams, recorder: Recorder, loop: LoopThread
) -> None:
    tokens = list(TOKENS)[:2]
    targets = targets_for(platform.url, tokens)
    companies = {target.token: company for company, target in targets.items()}
    loop.run(streams.apply(targets))
    assert eventually(all_connected(platform, tokens))
    emitter = Emitter(platform, tokens)
    emitter.start()
    most_sockets = 0

    def reconnected() -> bool:
        nonlocal most_sockets
        most_sockets = max(most_sockets, client_sockets(platform.port))
        return all_connected(platform, tokens)()

    took: list[float] = []
    down: list[float] = []
    try:
        for _ in range(20):
            assert eventually(flowing(recorder))  # events flow before each restart
            stopping = time.monotonic()
            platform.stop()
            started = time.monotonic()
            platform.start()
            assert eventually(reconnected, timeout=10)
            took.append(time.monotonic() - started)  # from the server's being back
            down.append(time.monotonic() - stopping)
    finally:
        emitter.stop()

    assert most_sockets <= len(tokens)  # never two connections for one company
    for token, company in companies.items():
        got = recorder.seqs(company)
        assert len(got) == len(set(got)), "an event was handed on twice"
        assert got == sorted(got), "events out of order"
        assert set(got) <= set(emitter.sent[token])
        status = streams.statuses()[company]
        assert status.reconnects == 20 and status.state is StreamState.CONNECTED
        assert 0 < status.disconnected_seconds < sum(down) + 1
        assert platform.connects(token) == 21
    print(
        f"\nreconnect after restart (s): min {min(took):.3f} "
        f"median {statistics.median(took):.3f} max {max(took):.3f}"
    )
    assert client_sockets(platform.port) == len(tokens)
    loop.run(streams.close())
    assert client_sockets(platform.port) == 0


def test_a_server_side_drop_reconnects_at_once(
    platform: PlatformServer,
    recorder: Recorder,
    loop: LoopThread,
    make_streams: Callable[..., PlatformStreams],
) -> None:
    token = next(iter(TOKENS))
    ((company, target),) = targets_for(platform.url, [token]).items()
    slow_backoff = spool.Backoff(initial=timedelta(seconds=30), maximum=timedelta(seconds=60))
    streams = make_streams(backoff=slow_backoff)
    loop.run(streams.apply({company: target}))
    assert eventually(lambda: platform.connected(token) == 1)
    started = time.monotonic()
    assert platform.drop(token) == 1
    assert eventually(lambda: platform.connects(token) == 2, timeout=5)
    assert time.monotonic() - started < 2  # not the 30 s backoff: the first retry is at once
    assert eventually(lambda: streams.statuses()[company].reconnects == 1)
    platform.emit(token, CALL, event(7))
    assert eventually(lambda: recorder.seqs(company) == [7])
    states = [status.state for owner, status in recorder.states if owner == company]
    assert states == [StreamState.CONNECTED, StreamState.DISCONNECTED, StreamState.CONNECTED]
    assert client_sockets(platform.port) == 1


class StepClock:
    """The injected clock: it says what the test set, and moves only when the test says."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def test_the_status_times_come_from_the_injected_clock(
    platform: PlatformServer,
    recorder: Recorder,
    loop: LoopThread,
    make_streams: Callable[..., PlatformStreams],
) -> None:
    clock = StepClock()
    opened = clock.now
    token = next(iter(TOKENS))
    ((company, target),) = targets_for(platform.url, [token]).items()
    platform.stop()
    streams = make_streams(clock=clock)
    loop.run(streams.apply({company: target}))
    assert eventually(lambda: state_of(streams, company) is StreamState.DISCONNECTED)
    assert streams.statuses()[company].since == opened  # no time passed yet, on this clock
    up = clock.advance(5)
    platform.start()
    assert eventually(lambda: state_of(streams, company) is StreamState.CONNECTED)
    status = streams.statuses()[company]
    assert (status.since, status.disconnected_seconds) == (up, 5.0)

    clock.advance(60)  # connected time is not disconnected time
    assert streams.statuses()[company].disconnected_seconds == 5.0
    platform.emit(token, CALL, event(1))
    assert eventually(lambda: recorder.seqs(company) == [1])
    assert streams.statuses()[company].last_event_at == clock.now

    dropped = clock.advance(40)
    platform.drop(token)
    assert eventually(lambda: streams.statuses()[company].reconnects == 1)
    clock.advance(30)
    status = streams.statuses()[company]
    assert (status.since, status.disconnected_seconds) == (dropped, 5.0)
    lost = [
        status.since
        for owner, status in recorder.states
        if owner == company and status.state is StreamState.DISCONNECTED
    ]
    assert lost == [opened, dropped]


def test_an_unreachable_platform_warns_once_per_outage_and_reports_the_downtime(
    make_streams: Callable[..., PlatformStreams], loop: LoopThread, caplog: pytest.LogCaptureFixture
) -> None:
    platform = PlatformServer(TOKENS)
    platform.start()
    platform.stop()  # its port is known, and nobody listens there
    token = next(iter(TOKENS))
    ((company, target),) = targets_for(platform.url, [token]).items()
    try:
        streams = make_streams()
        loop.run(streams.apply({company: target}))
        assert eventually(
            lambda: sum("still cannot connect" in r.getMessage() for r in caplog.records) >= 3
        )
        status = streams.statuses()[company]
        assert status.state is StreamState.DISCONNECTED
        assert status.detail is not None
        assert status.detail.startswith("ClientConnectorError: Cannot connect to host 127.0.0.1")
        platform.start()
        assert eventually(lambda: state_of(streams, company) is StreamState.CONNECTED)
        mine = [r for r in caplog.records if str(company) in r.getMessage()]
        warnings = [r for r in mine if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "cannot connect" in warnings[0].getMessage()
        assert all(r.levelno == logging.DEBUG for r in mine if "still cannot" in r.msg)
        assert platform.connects(token) == 1
        connected = [r.getMessage() for r in mine if r.levelno == logging.INFO]
        assert connected and "connected after" in connected[-1]
        assert streams.statuses()[company].disconnected_seconds > 0
    finally:
        platform.stop()


# -- refusals -----------------------------------------------------------------------------


def test_a_refused_token_is_retried_only_after_the_refused_wait(
    platform: PlatformServer,
    recorder: Recorder,
    loop: LoopThread,
    caplog: pytest.LogCaptureFixture,
    make_streams: Callable[..., PlatformStreams],
) -> None:
    ((company, target),) = targets_for(platform.url, [BAD_TOKEN]).items()
    streams = make_streams(refused_retry_seconds=1.0)
    loop.run(streams.apply({company: target}))
    assert eventually(lambda: state_of(streams, company) is StreamState.REFUSED)
    refused_at = time.monotonic()
    status = streams.statuses()[company]
    assert status.detail == "invalid token"
    assert platform.attempts(BAD_TOKEN) == 1
    assert eventually(lambda: client_sockets(platform.port) == 0, timeout=1)  # ws closed too

    # a tight loop would make hundreds of attempts in this window; the rule makes one more
    assert eventually(lambda: platform.attempts(BAD_TOKEN) == 2, timeout=5)
    assert time.monotonic() - refused_at >= 0.9
    assert platform.attempts(BAD_TOKEN) == 2

    def refusals() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.WARNING and "refused the token" in r.getMessage()
        ]

    assert eventually(lambda: len(refusals()) == 2)  # one line per refusal
    assert all(str(company) in line and "invalid token" in line for line in refusals())

    platform.accept(BAD_TOKEN, "Reinstated")  # the platform takes the token again
    assert eventually(lambda: state_of(streams, company) is StreamState.CONNECTED, timeout=5)
    assert platform.attempts(BAD_TOKEN) == 3
    states = [status.state for owner, status in recorder.states if owner == company]
    assert states == [StreamState.REFUSED, StreamState.CONNECTED]


def test_a_token_the_platform_revokes_is_refused_at_the_next_connect(
    platform: PlatformServer, streams: PlatformStreams, loop: LoopThread
) -> None:
    token = next(iter(TOKENS))
    ((company, target),) = targets_for(platform.url, [token]).items()
    loop.run(streams.apply({company: target}))
    assert eventually(lambda: platform.connected(token) == 1)
    platform.refuse(token)
    assert platform.connected(token) == 1  # an open connection stays open
    platform.drop(token)
    assert eventually(lambda: state_of(streams, company) is StreamState.REFUSED)
    assert streams.statuses()[company].detail == "invalid token"
    assert platform.attempts(token) == 2
    assert eventually(lambda: client_sockets(platform.port) == 0, timeout=1)


def test_with_the_default_wait_a_refusal_is_not_retried_soon(
    platform: PlatformServer, loop: LoopThread, make_streams: Callable[..., PlatformStreams]
) -> None:
    ((company, target),) = targets_for(platform.url, [BAD_TOKEN]).items()
    good = next(iter(TOKENS))
    targets = {company: target, **targets_for(platform.url, [good])}
    streams = make_streams()  # refused_retry_seconds=300
    loop.run(streams.apply(targets))
    assert eventually(lambda: state_of(streams, company) is StreamState.REFUSED)
    assert eventually(lambda: platform.connected(good) == 1)  # the others are not held up
    window = threading.Event()
    window.wait(1.0)  # the bounded window in which a tight loop would show itself
    assert platform.attempts(BAD_TOKEN) == 1


# -- the delays, without waiting ------------------------------------------------------------


def test_retry_delays_grow_cap_and_stay_within_their_jitter() -> None:
    backoff = spool.Backoff(initial=timedelta(seconds=1), maximum=timedelta(seconds=60), jitter=0.5)

    def delay(ending: Ending, failures: int, fraction: float) -> float:
        return retry_delay(
            ending, failures, backoff=backoff, refused_retry_seconds=300, random_fraction=fraction
        )

    assert [delay(Ending.UNREACHABLE, n, 0.0) for n in range(1, 9)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
    ]
    assert delay(Ending.UNREACHABLE, 1000, 0.0) == 60  # the cap, however long the outage
    for failures in (1, 3, 10):
        top = delay(Ending.UNREACHABLE, failures, 0.0)
        for fraction in (0.0, 0.25, 0.5, 0.999):
            assert top * 0.5 <= delay(Ending.UNREACHABLE, failures, fraction) <= top
    # a dropped connection is retried at once, give or take a jitter of half a second
    assert delay(Ending.DROPPED, 0, 0.0) == 0
    assert 0.4 < delay(Ending.DROPPED, 0, 0.999) < 0.5
    assert (
        retry_delay(  # and never later than the first backoff step would be
            Ending.DROPPED, 0, backoff=FAST, refused_retry_seconds=300, random_fraction=0.999
        )
        < FAST.initial.total_seconds()
    )
    # a refusal waits its full time, and at most REFUSED_SPREAD more: never a tight loop
    for fraction in (0.0, 0.5, 0.999):
        assert 300 <= delay(Ending.REFUSED, 0, fraction) <= 300 * (1 + REFUSED_SPREAD)


# -- tokens stay secret -------------------------------------------------------------------


def test_tokens_appear_in_no_status_nor_repr(
    platform: PlatformServer, streams: PlatformStreams, loop: LoopThread
) -> None:
    targets = {
        **targets_for(platform.url, [*TOKENS, BAD_TOKEN]),
        **targets_for("http://127.0.0.1:notaport/", ["tok-badurl-7c1e0d3a"]),
    }
    loop.run(streams.apply(targets))
    assert eventually(all_connected(platform, list(TOKENS)))
    assert eventually(lambda: StreamState.REFUSED in {s.state for s in streams.statuses().values()})
    assert eventually(lambda: sum(s.detail is not None for s in streams.statuses().values()) == 2)
    platform.restart()
    assert eventually(all_connected(platform, list(TOKENS)))
    shown = repr(streams.statuses()) + repr(targets)
    for token in [*ALL_TOKENS, "tok-badurl-7c1e0d3a"]:
        assert token not in shown


def test_error_text_loses_its_query_string() -> None:
    url = stream_url("https://socket.example/", "s3cr+t/&x")
    assert url == "https://socket.example/?token=s3cr%2Bt%2F%26x"
    text = safe_text(f"WSServerHandshakeError: 403, url='{url}&EIO=4&transport=websocket'")
    assert text == "WSServerHandshakeError: 403, url='https://socket.example/'"
