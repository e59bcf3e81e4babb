"""`spool.testing.InMemorySink`: the sink contract, and the failures a test arms on it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from spool import ConfigSinkError, DurableQueue, SpoolRecord, TransientSinkError
from spool.testing import InMemorySink
from tests.support.sink_contract import UnnamedRefusalContract, spooled


class InMemoryBackend:
    """The contract's hooks for the in-memory sink: bad records are refused by id."""

    def __init__(self, queue: DurableQueue) -> None:
        self.queue = queue
        self.sink = InMemorySink()
        self._keys = itertools.cycle(["company-a", "company-b"])

    def good(self) -> SpoolRecord:
        return spooled(self.queue, next(self._keys), b'{"status": "success"}')

    def bad(self) -> SpoolRecord:
        record = self.good()
        self.sink.refuse(record.id, "status is not a status")
        return record

    def unnamed_bad(self) -> SpoolRecord:
        record = self.good()
        self.sink.refuse(record.id, "integer out of range", named=False)
        return record

    def stored_ids(self) -> list[str]:
        return [record.id for record in self.sink.records]

    @contextmanager
    def unavailable(self) -> Iterator[None]:
        self.sink.fail_next()
        try:
            yield
        finally:
            self.sink.fail_next(0)

    def misconfigured(self) -> InMemorySink:
        sink = InMemorySink()
        sink.misconfigure("permission denied for table outbox")
        return sink


class TestInMemorySinkKeepsTheContract(UnnamedRefusalContract):
    @pytest.fixture
    def backend(self, contract_queue: DurableQueue) -> InMemoryBackend:
        return InMemoryBackend(contract_queue)


@pytest.fixture
def backend(outbox: DurableQueue) -> InMemoryBackend:
    return InMemoryBackend(outbox)


def test_an_outage_lasts_exactly_the_writes_it_was_armed_for(backend: InMemoryBackend) -> None:
    batch = [backend.good()]
    backend.sink.fail_next(2)
    for _ in range(2):
        with pytest.raises(TransientSinkError):
            backend.sink.write(batch)
    backend.sink.write(batch)
    assert backend.stored_ids() == [batch[0].id]
    assert backend.sink.attempts == 3


def test_a_misconfigured_sink_refuses_every_write_until_repaired(
    backend: InMemoryBackend,
) -> None:
    batch = [backend.good()]
    backend.sink.misconfigure("no such table")
    for _ in range(2):
        with pytest.raises(ConfigSinkError, match="no such table"):
            backend.sink.write(batch)
    backend.sink.repair()
    backend.sink.write(batch)
    assert backend.stored_ids() == [batch[0].id]


def test_a_record_written_again_keeps_its_first_copy(backend: InMemoryBackend) -> None:
    first = backend.good()
    backend.sink.write([first])
    backend.sink.write([first._replace(payload=b"changed")])
    assert backend.sink.records == [first]
