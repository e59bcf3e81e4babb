"""Black-box fault harness: the scenarios' companies, a load generator, the checker.

Everything runs for real on 127.0.0.1: `relay serve` processes SIGKILLed and SIGTERMed from
outside (tests/support/relay_launcher.py), receivers that record every POST
(tests/support/receivers.py), the suite's PostgreSQL. The checker compares three sources at
the end of a scenario: the events the load generator got 202 for, the POSTs the receivers
saw (by `webhook-id`), and the rows of `webhook_executions`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.inbox.store import INBOX_QUEUE
from relay.registry import writes
from relay.registry.filters import parse_filters
from relay.runtime.wiring import EXECUTION_LOG_QUEUE
from spool import DeadLetter, DurableQueue, ScheduledQueue, SpoolDatabase
from tests.support.receivers import Post, PostLog
from tests.support.relay_data import sample_event

EVENT = "call-history-was-created"
_pause = threading.Event()  # never set: `_pause.wait(s)` is an interruptible pacing wait


# -- registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hook:
    """A webhook of a company; `matches(data)` mirrors its filters, for the checker.

    Tags starting with `bad-` name receivers that never answer 2xx: the checker does not
    expect them to be delivered to (their scenario checks them itself).
    """

    tag: str
    url: str
    filters: tuple[dict[str, Any], ...] = ()

    def matches(self, data: dict[str, Any]) -> bool:
        for f in self.filters:
            assert f["operator"] == "equals", "the harness mirrors only `equals` filters"
            if data.get(f["field_path"]) != f["value"]:
                return False
        return True


@dataclass
class Company:
    id: uuid.UUID
    hooks: list[Hook]

    def expected(self, data: dict[str, Any]) -> list[str]:
        return [h.tag for h in self.hooks if h.matches(data)]


def add_company(engine: Engine, name: str, hooks: Sequence[Hook]) -> Company:
    company = writes.add_company(engine, name).id
    for hook in hooks:
        writes.add_webhook(
            engine,
            company_id=company,
            url=hook.url,
            event=EVENT,
            filters=parse_filters(list(hook.filters)),
            secret=writes.new_signing_secret(),
        )
    return Company(company, list(hooks))


EVEN = ({"field_path": "parity", "operator": "equals", "value": "even"},)


def add_all_and_even_companies(
    engine: Engine, name: str, receiver_url: str, count: int
) -> list[Company]:
    """`count` companies, each with a webhook for every event and one for even events only."""
    hooks = [Hook("all", f"{receiver_url}/all/ok"), Hook("even", f"{receiver_url}/even/ok", EVEN)]
    return [add_company(engine, f"{name} {n}", hooks) for n in range(count)]


# -- load generator --------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    fault_id: str
    company: uuid.UUID
    expected: tuple[str, ...]
    accepted_at: float


def event_data(fault_id: str, seq: int) -> dict[str, Any]:
    data = sample_event()
    data["fault_id"] = fault_id
    data["parity"] = "even" if seq % 2 == 0 else "odd"
    data["tenth"] = seq % 10 == 0
    return data


class LoadGenerator:
    """Posts events at a steady rate from a few threads, each with a caller `id`.

    Event n goes to company n % len(companies) through relay n % len(targets). When the relay
    is down or answers 503, the same event (same id) is tried again on the same relay (the
    intake is idempotent per id), a bounded number of times. Bounded in count and time.
    """

    def __init__(
        self,
        targets: Sequence[Callable[[], str]],
        companies: Sequence[Company],
        *,
        rate: float,
        max_events: int,
        prefix: str,
        threads: int = 4,
        max_seconds: float = 300,
        retry_for_seconds: float = 20,
        data: Callable[[str, int], dict[str, Any]] = event_data,
    ) -> None:
        self.targets = targets
        self.companies = companies
        self.rate = rate
        self.max_events = max_events
        self.prefix = prefix
        self.retry_for_seconds = retry_for_seconds
        self.max_seconds = max_seconds
        self.data = data
        self.accepted: dict[str, Accepted] = {}
        self.answers: list[tuple[float, int | None]] = []  # (when, status or None: no answer)
        self.unexpected: list[str] = []
        self.given_up: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next = itertools.count()
        self._threads = [
            threading.Thread(target=self._run, name=f"load-{n}", daemon=True)
            for n in range(threads)
        ]
        self._started = 0.0

    def start(self) -> LoadGenerator:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.retry_for_seconds + 15)

    def wait_done(self, timeout: float) -> bool:
        give_up = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, give_up - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def count(self) -> int:
        with self._lock:
            return len(self.accepted)

    def statuses(self) -> Counter[int | None]:
        with self._lock:
            return Counter(status for _, status in self.answers)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                with self._lock:
                    n = next(self._next)
                if n >= self.max_events:
                    return
                due = self._started + n / self.rate
                if due - time.monotonic() > self.max_seconds:
                    return
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                self._send(client, n)

    def _send(self, client: httpx.Client, n: int) -> None:
        fault_id = f"{self.prefix}-{n:06d}"
        company = self.companies[n % len(self.companies)]
        target = self.targets[n % len(self.targets)]
        data = self.data(fault_id, n)
        body = json.dumps(
            {"company_id": str(company.id), "event": EVENT, "id": fault_id, "data": data}
        )
        expected = tuple(company.expected(data))
        give_up = time.monotonic() + self.retry_for_seconds
        for attempt in itertools.count():  # bounded by time below
            status: int | None = None
            try:
                answer = client.post(
                    f"{target()}/v1/events",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                status = answer.status_code
            except httpx.HTTPError:
                pass
            now = time.monotonic()
            with self._lock:
                self.answers.append((now, status))
            if status == 202:
                deliveries = answer.json()["deliveries"]
                with self._lock:
                    self.accepted[fault_id] = Accepted(fault_id, company.id, expected, now)
                    if deliveries != len(expected):
                        self.unexpected.append(f"{fault_id}: {deliveries} deliveries != {expected}")
                return
            if status is not None and status != 503:
                with self._lock:
                    self.unexpected.append(f"{fault_id}: answered {status}")
                return
            if now >= give_up or (self._stop.is_set() and attempt > 0):
                with self._lock:
                    self.given_up.append(fault_id)
                return
            _pause.wait(min(0.1, 0.01 * 2 ** min(attempt, 5)))


# -- PostgreSQL and spool state ----------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    execution_id: str
    message_id: str
    attempt: int
    status: str
    response_status: int | None
    error: str | None
    fault_id: str | None


def execution_rows(engine: Engine) -> list[Row]:
    with engine.connect() as conn:
        result = conn.execute(
            sa.text(
                "SELECT execution_id, message_id, attempt, status, response_status, error,"
                " request_payload->'data'->>'fault_id' AS fault_id FROM webhook_executions"
            )
        )
        return [
            Row(
                str(r.execution_id),
                r.message_id,
                r.attempt,
                r.status,
                r.response_status,
                r.error,
                r.fault_id,
            )
            for r in result
        ]


def row_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM webhook_executions")).scalar_one())


@dataclass(frozen=True)
class SpoolState:
    path: Path
    inbox: int
    outbox: int
    dead_letters: tuple[DeadLetter, ...]


def spool_state(path: Path) -> SpoolState:
    """Open a stopped relay's spool and count what is left in it."""
    db = SpoolDatabase(path)
    try:
        outbox = DurableQueue(db, EXECUTION_LOG_QUEUE)
        inbox = ScheduledQueue(db, INBOX_QUEUE)
        return SpoolState(path, inbox.count(), outbox.stats().pending, tuple(outbox.dead_letters()))
    finally:
        db.close()


# -- the checker -----------------------------------------------------------------------------


@dataclass
class Figures:
    scenario: str
    accepted: int = 0
    expected_deliveries: int = 0
    delivered: int = 0
    posts: int = 0
    receiver_duplicates: int = 0
    rows: int = 0
    dead_letters: int = 0
    lost: int = 0
    duplicated: int = 0
    seconds: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    def line(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.extra.items())
        return (
            f"{self.scenario:<28} accepted={self.accepted} deliveries={self.expected_deliveries}"
            f" delivered={self.delivered} posts={self.posts}"
            f" receiver_dups={self.receiver_duplicates} rows={self.rows}"
            f" dead_letters={self.dead_letters} lost={self.lost} duplicated={self.duplicated}"
            f" time={self.seconds:.1f}s{extra}"
        )


REPORT: list[Figures] = []  # printed by tests/faults/conftest.py at the end of the session


def check(
    scenario: str,
    *,
    accepted: Iterable[Accepted],
    posts: Sequence[Post],
    rows: Sequence[Row],
    spools: Sequence[SpoolState],
    exact: bool,
    expected_dead_letters: int = 0,
    started: float | None = None,
    extra: dict[str, object] | None = None,
) -> Figures:
    """Compare what was accepted, what the receivers saw and what PostgreSQL holds.

    `exact`: no relay was SIGKILLed, so every POST produced a row (with kills a POST may have
    happened without its result being recorded). Always: no execution_id twice, no (webhook-id,
    attempt) twice, at most one success row per webhook-id, and no more rows with an HTTP
    answer than answers the receiver gave for that webhook-id.
    Raises AssertionError listing the problems; records the figures either way.
    """
    accepted = list(accepted)
    problems: list[str] = []
    lost = duplicated = 0

    posts_by_id: dict[str, list[Post]] = defaultdict(list)
    ids_by_delivery: dict[tuple[str, str], set[str]] = defaultdict(set)
    for post in posts:
        posts_by_id[post.webhook_id].append(post)
        if post.fault_id is not None:
            ids_by_delivery[(post.fault_id, post.tag)].add(post.webhook_id)
    ok_posts = [p for p in posts if p.status is not None and 200 <= p.status < 300]
    delivered = {(p.fault_id, p.tag) for p in ok_posts if p.fault_id is not None}

    # 1. Every accepted event reached every matching webhook (that can answer 2xx) at least once.
    expected_pairs = [(a.fault_id, tag) for a in accepted for tag in a.expected]
    must = {(a.fault_id, t) for a in accepted for t in a.expected if not t.startswith("bad-")}
    missing = sorted(must - delivered)
    lost += len(missing)
    if missing:
        problems.append(f"{len(missing)} accepted deliveries never arrived, e.g. {missing[:5]}")

    # 2. One delivery identity per (event, webhook): a repeat of an id must not re-enqueue.
    split = {k: v for k, v in ids_by_delivery.items() if len(v) > 1}
    duplicated += len(split)
    if split:
        problems.append(
            f"{len(split)} deliveries POSTed under several webhook-ids: {list(split)[:5]}"
        )

    # 3. Rows: no duplicate execution_id, no (webhook-id, attempt) twice, no more rows than POSTs.
    id_counts = Counter(r.execution_id for r in rows)
    dup_exec = [k for k, n in id_counts.items() if n > 1]
    duplicated += len(dup_exec)
    if dup_exec:
        problems.append(f"{len(dup_exec)} duplicate execution_id: {dup_exec[:5]}")
    attempt_counts = Counter((r.message_id, r.attempt) for r in rows)
    dup_attempts = [k for k, n in attempt_counts.items() if n > 1]
    duplicated += len(dup_attempts)
    if dup_attempts:
        problems.append(
            f"{len(dup_attempts)} (webhook-id, attempt) logged twice: {dup_attempts[:5]}"
        )
    rows_by_id: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        rows_by_id[row.message_id].append(row)
    # A row with an HTTP status records an answer the receiver gave: never more of those than
    # answered POSTs. A row without one (timeout, reset) may stand for an attempt that never
    # reached the receiver's app (a receiver under load accepts the connection late).
    answered_posts = Counter(p.webhook_id for p in posts if p.status is not None)
    answered_rows = Counter(r.message_id for r in rows if r.response_status is not None)
    too_many = {
        m: (n, answered_posts[m]) for m, n in answered_rows.items() if n > answered_posts[m]
    }
    duplicated += len(too_many)
    if too_many:
        problems.append(
            f"{len(too_many)} webhook-ids with more answers logged than given: {too_many}"
        )
    successes = Counter(r.message_id for r in rows if r.status == "success")
    twice = [m for m, n in successes.items() if n > 1]
    duplicated += len(twice)
    if twice:
        problems.append(f"{len(twice)} webhook-ids with several success rows: {twice[:5]}")
    unseen_ids = [m for m, rs in rows_by_id.items() if len(rs) > len(posts_by_id.get(m, []))]
    unseen = sum(len(rows_by_id[m]) - len(posts_by_id.get(m, [])) for m in unseen_ids)
    for m in [*too_many, *twice, *unseen_ids][:10]:  # the evidence, for whoever reads the log
        logged = [(r.attempt, r.status, r.response_status, r.error) for r in rows_by_id[m]]
        answered = [p.status for p in posts_by_id.get(m, [])]
        print(f"webhook-id {m}: rows {logged}; POSTs answered {answered}")
    if exact:
        short = {
            m: (len(rows_by_id.get(m, [])), len(ps))
            for m, ps in posts_by_id.items()
            if len(rows_by_id.get(m, [])) < len(ps)
        }
        lost += len(short)
        if short:
            problems.append(f"{len(short)} webhook-ids with POSTs but fewer rows: {short}")

    # 4. Each delivered event has a success row.
    success_ids = {r.message_id for r in rows if r.status == "success"}
    no_success = sorted({p.webhook_id for p in ok_posts} - success_ids)
    lost += len(no_success)
    if no_success:
        problems.append(f"{len(no_success)} delivered webhook-ids without a success row")

    # 5. After the final clean shutdown the spools are empty, dead letters aside.
    dead: list[DeadLetter] = []
    for state in spools:
        dead.extend(state.dead_letters)
        if state.inbox or state.outbox:
            lost += state.inbox + state.outbox
            problems.append(
                f"spool {state.path} not empty after a clean stop: "
                f"{state.inbox} deliveries, {state.outbox} log rows"
            )
    for letter in dead:
        print(f"dead letter {letter.id} (company {letter.key}): {letter.error[:200]}")
    if len(dead) != expected_dead_letters:
        problems.append(f"{len(dead)} dead letters, expected {expected_dead_letters}")

    figures = Figures(
        scenario=scenario,
        accepted=len(accepted),
        expected_deliveries=len(expected_pairs),
        delivered=len(delivered & set(expected_pairs)),
        posts=len(posts),
        receiver_duplicates=len(ok_posts) - len({p.webhook_id for p in ok_posts}),
        rows=len(rows),
        dead_letters=len(dead),
        lost=lost,
        duplicated=duplicated,
        seconds=time.monotonic() - started if started is not None else 0.0,
        extra=dict(extra or {}) | ({"unseen_attempts": unseen} if unseen else {}),
    )
    REPORT.append(figures)
    print(figures.line())
    assert not problems, "\n".join(problems)
    return figures


DELIVERY_WAIT_CAP_SECONDS = 900.0


def wait_delivered(
    log: PostLog,
    accepted: Iterable[Accepted],
    timeout: float,
    *,
    cap_seconds: float = DELIVERY_WAIT_CAP_SECONDS,
) -> bool:
    """Wait until every accepted event reached every webhook that can answer 2xx.

    `timeout` bounds a stall, not the whole wait: it fails once `timeout` seconds pass with
    no new delivery. A backlog the relay is working through (a slow machine, many restarts)
    may take longer than any fixed time; a relay that stopped delivering fails all the same.
    `cap_seconds` bounds the wait whatever happens.
    """
    must = {(a.fault_id, t) for a in accepted for t in a.expected if not t.startswith("bad-")}
    give_up = time.monotonic() + cap_seconds
    missing = len(must - log.delivered())
    stalled_since = time.monotonic()
    while missing and time.monotonic() < give_up:
        _pause.wait(0.1)
        now_missing = len(must - log.delivered())
        if now_missing < missing:
            missing, stalled_since = now_missing, time.monotonic()
        elif time.monotonic() - stalled_since >= timeout:
            break
    if missing:
        print(f"wait_delivered: {missing} of {len(must)} deliveries never arrived")
    return missing == 0
