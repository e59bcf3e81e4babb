"""Intake's batched spool writes: the events of one pass of the event loop share a
transaction committed on the loop's thread; while another process holds the write lock
the loop keeps serving and a worker thread waits for the lock instead."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from relay.inbox.deliveries import Delivery
from relay.inbox.store import Acceptance, EventInbox
from relay.intake.batching import AcceptBatcher
from spool import SpoolDatabase, SpoolFullError


def acceptance(
    n: int, *, caller_id: str | None = None, company: uuid.UUID | None = None
) -> Acceptance:
    company = company or uuid.uuid4()
    delivery = Delivery(
        id=f"msg_{n}",
        event_id=f"event-{n}",
        company_id=company,
        webhook_id=uuid.uuid4(),
        url="http://127.0.0.1:9/hook",
        event_type="call-history-was-created",
        event_db_id=1,
        phone_number=None,
        body=f'{{"n": {n}}}',
    )
    return Acceptance(company, f"event-{n}", [delivery], caller_id)


def inbox_at(path: Path, **spool_options: object) -> EventInbox:
    spool = SpoolDatabase(path, **spool_options)  # type: ignore[arg-type]
    return EventInbox(spool, idempotency_window=timedelta(hours=24))


def test_the_events_of_one_loop_pass_share_one_transaction(tmp_path: Path) -> None:
    inbox = inbox_at(tmp_path / "spool.db")
    batcher = AcceptBatcher(inbox)

    async def main() -> list[int]:
        receipts = await asyncio.gather(*(batcher.accept(acceptance(n)) for n in range(10)))
        return [receipt.deliveries for receipt in receipts]

    assert asyncio.run(main()) == [1] * 10
    assert inbox.spool.commits == 1
    assert inbox.queue.count() == 10
    batcher.close()
    inbox.spool.close()


def test_a_repeated_caller_id_in_the_same_batch_is_accepted_once(tmp_path: Path) -> None:
    inbox = inbox_at(tmp_path / "spool.db")
    batcher = AcceptBatcher(inbox)

    company = uuid.uuid4()

    async def main() -> list[bool]:
        first, again = await asyncio.gather(
            batcher.accept(acceptance(1, caller_id="call-1", company=company)),
            batcher.accept(acceptance(2, caller_id="call-1", company=company)),
        )
        return [first.duplicate, again.duplicate]

    assert asyncio.run(main()) == [False, True]
    assert inbox.queue.count() == 1
    batcher.close()
    inbox.spool.close()


def test_while_another_process_writes_the_loop_keeps_serving(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    # A loop that waited for the lock would wait the whole busy timeout: the test would
    # then see the heartbeat only after the accept, and fail.
    inbox = inbox_at(path, busy_timeout_seconds=20)
    batcher = AcceptBatcher(inbox)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # the dispatcher's process, mid-transaction

    async def main() -> tuple[list[str], int]:
        order: list[str] = []

        async def accept() -> int:
            receipt = await batcher.accept(acceptance(1))
            order.append("accepted")
            return receipt.deliveries

        task = asyncio.create_task(accept())
        await asyncio.sleep(0.05)  # the loop runs other work meanwhile: this sleep ends
        order.append("heartbeat")
        assert not task.done()
        other.execute("ROLLBACK")  # the other writer finishes; the thread gets the lock
        return order, await asyncio.wait_for(task, 15)

    try:
        order, deliveries = asyncio.run(main())
    finally:
        other.close()
    assert order == ["heartbeat", "accepted"] and deliveries == 1
    assert inbox.queue.count() == 1
    batcher.close()
    inbox.spool.close()


def test_a_full_spool_refuses_every_event_of_the_batch_and_the_next_batch_goes_through(
    tmp_path: Path,
) -> None:
    inbox = inbox_at(tmp_path / "spool.db", max_bytes=1)  # full from the start
    batcher = AcceptBatcher(inbox)

    async def refused() -> list[BaseException | object]:
        return await asyncio.gather(
            *(batcher.accept(acceptance(n)) for n in range(3)), return_exceptions=True
        )

    assert all(isinstance(result, SpoolFullError) for result in asyncio.run(refused()))
    inbox.spool.max_bytes = None  # room again

    async def accepted() -> int:
        return (await batcher.accept(acceptance(9))).deliveries

    assert asyncio.run(accepted()) == 1
    assert inbox.queue.count() == 1
    batcher.close()
    inbox.spool.close()


@pytest.mark.parametrize("count", [1, 64])
def test_every_waiter_gets_its_own_receipt(tmp_path: Path, count: int) -> None:
    inbox = inbox_at(tmp_path / "spool.db")
    batcher = AcceptBatcher(inbox)

    async def main() -> list[str]:
        receipts = await asyncio.gather(*(batcher.accept(acceptance(n)) for n in range(count)))
        return [receipt.id for receipt in receipts]

    assert asyncio.run(main()) == [f"event-{n}" for n in range(count)]
    batcher.close()
    inbox.spool.close()
