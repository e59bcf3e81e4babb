"""The contract every `spool.Sink` keeps, written once and run against each sink.

huey runs one set of storage tests against every backend through a mixin; this is that idea
in pytest. A test class inherits `SinkContract` and overrides its `backend` fixture with a
`SinkBackend`: the small hook that makes records this sink accepts and refuses, reads back
what it stored, and makes it fail. A sink that may also refuse a batch without naming the bad
record (a database refusing the statement) inherits `UnnamedRefusalContract` instead, which
adds the cases the drain's bisection relies on. tests/spool runs the contract on
`spool.testing`'s in-memory sink; tests/relay on the execution log over PostgreSQL and over
SQLite. It imports nothing from `relay`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import pytest

from spool import (
    ConfigSinkError,
    Drainer,
    DrainPolicy,
    DurableQueue,
    Outcome,
    RecordSinkError,
    Sink,
    SpoolDatabase,
    SpoolRecord,
    TransientSinkError,
)


class SinkBackend(Protocol):
    """One sink under the contract, and what the contract needs to drive it.

    Records are appended to the contract's queue (so they are real spool records with
    unique ids) by `spooled`; the hooks choose keys and payloads valid for their sink.
    """

    @property
    def sink(self) -> Sink: ...

    def good(self) -> SpoolRecord:
        """A spooled record the sink stores."""
        ...

    def bad(self) -> SpoolRecord:
        """A spooled record the sink refuses and names in `RecordSinkError.rejected`."""
        ...

    def stored_ids(self) -> list[str]:
        """The ids of the records the sink holds, a duplicate as often as it is stored."""
        ...

    def unavailable(self) -> AbstractContextManager[None]:
        """Inside, a write fails as a transient outage would; after, the sink works again."""
        ...

    def misconfigured(self) -> Sink:
        """A sink of this kind aimed at a destination that refuses every write."""
        ...


class UnnamingSinkBackend(SinkBackend, Protocol):
    """A sink that can also refuse a batch without naming the bad record (a database
    refusing the statement), so the drain must bisect."""

    def unnamed_bad(self) -> SpoolRecord:
        """A spooled record the sink refuses without saying which record was at fault."""
        ...


def spooled(queue: DurableQueue, key: str, payload: bytes) -> SpoolRecord:
    """Append one record and return it as the drain would fetch it."""
    record_id = queue.append(key, payload).record_id
    [record] = [r for r in queue.fetch_oldest(queue.stats().pending) if r.id == record_id]
    return record


def ids(records: Sequence[SpoolRecord]) -> list[str]:
    return sorted(record.id for record in records)


class SinkContract:
    """The tests every sink passes; a subclass named `Test...` provides the `backend`
    fixture."""

    @pytest.fixture
    def contract_queue(self, spool_db: SpoolDatabase) -> DurableQueue:
        return DurableQueue(spool_db, "contract")

    @pytest.fixture
    def backend(self) -> SinkBackend:
        raise NotImplementedError("a SinkContract subclass provides the backend fixture")

    def test_a_batch_is_stored_whole(self, backend: SinkBackend) -> None:
        batch = [backend.good() for _ in range(5)]
        backend.sink.write(batch)
        assert sorted(backend.stored_ids()) == ids(batch)

    def test_records_written_again_are_stored_once(self, backend: SinkBackend) -> None:
        """A crash between the sink's commit and the spool's delete sends records again,
        alone or beside new ones."""
        first = [backend.good() for _ in range(30)]
        backend.sink.write(first)
        backend.sink.write(first)
        backend.sink.write(first[:7])
        later = [backend.good() for _ in range(3)]
        backend.sink.write(first[-2:] + later)
        assert sorted(backend.stored_ids()) == ids(first + later)

    def test_a_batch_holding_bad_records_stores_none_of_it_and_names_each(
        self, backend: SinkBackend
    ) -> None:
        good = [backend.good() for _ in range(6)]
        bad = [backend.bad(), backend.bad()]
        batch = good[:2] + bad[:1] + good[2:4] + bad[1:] + good[4:]
        with pytest.raises(RecordSinkError) as refused:
            backend.sink.write(batch)
        assert sorted(refused.value.rejected) == ids(bad)
        assert all(refused.value.rejected.values()), "every bad record has a reason"
        assert backend.stored_ids() == []
        backend.sink.write(good)
        assert sorted(backend.stored_ids()) == ids(good)

    def test_an_outage_is_transient_and_the_same_batch_is_written_after_it(
        self, backend: SinkBackend
    ) -> None:
        batch = [backend.good() for _ in range(4)]
        with backend.unavailable(), pytest.raises(TransientSinkError):
            backend.sink.write(batch)
        assert backend.stored_ids() == []
        backend.sink.write(batch)
        assert sorted(backend.stored_ids()) == ids(batch)

    def test_a_misconfigured_destination_is_a_configuration_error(
        self, backend: SinkBackend
    ) -> None:
        with pytest.raises(ConfigSinkError):
            backend.misconfigured().write([backend.good()])

    def test_the_drain_buries_each_bad_record_and_stores_the_rest_once(
        self, backend: SinkBackend, contract_queue: DurableQueue
    ) -> None:
        good = [backend.good() for _ in range(30)]
        bad = [backend.bad()]
        good += [backend.good() for _ in range(19)]
        assert_drained(contract_queue, backend, good, bad)


class UnnamedRefusalContract(SinkContract):
    """The contract of a sink that may refuse a batch without naming the bad record; its
    `backend` fixture gives an `UnnamingSinkBackend`."""

    def test_a_bad_record_the_sink_cannot_name_fails_the_whole_batch(
        self, backend: UnnamingSinkBackend
    ) -> None:
        batch = [backend.good() for _ in range(3)] + [backend.unnamed_bad(), backend.good()]
        with pytest.raises(RecordSinkError) as refused:
            backend.sink.write(batch)
        assert refused.value.rejected == {}  # the drain bisects the batch to find it
        assert backend.stored_ids() == []

    def test_the_drain_finds_unnamed_and_named_bad_records_and_stores_the_rest_once(
        self, backend: UnnamingSinkBackend, contract_queue: DurableQueue
    ) -> None:
        good = [backend.good() for _ in range(10)]
        bad = [backend.unnamed_bad()]
        good += [backend.good() for _ in range(10)]
        bad.append(backend.bad())
        good += [backend.good() for _ in range(10)]
        assert_drained(contract_queue, backend, good, bad)


def assert_drained(
    queue: DurableQueue,
    backend: SinkBackend,
    good: Sequence[SpoolRecord],
    bad: Sequence[SpoolRecord],
) -> None:
    """One forced drain cycle of `queue` into the backend's sink buries exactly `bad`, each
    with its reason, and stores each of `good` once."""
    report = Drainer(queue, backend.sink, DrainPolicy()).drain_once(force=True)
    assert report.outcome is Outcome.WRITTEN
    assert (report.rows_written, report.dead_lettered) == (len(good), len(bad))
    assert sorted(backend.stored_ids()) == ids(good)
    dead = queue.dead_letters()
    assert sorted(letter.id for letter in dead) == ids(bad)
    assert all(letter.error for letter in dead)
    assert queue.stats().pending == 0
