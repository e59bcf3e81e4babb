"""Log rows still in this relay's spool: the results of about the last minute.

The drain moves rows into the database in batches (a company at 50 rows or 60 s), so a
reader who wants what just happened must look here too. The look is bounded: the newest
`PENDING_SCAN_ROWS` records (of each company asked about), tested inside SQLite for the
values a search names, so a spool grown large in a database outage costs a reader no more
than a normal one. Rows further back in such a backlog show once they are drained.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

from relay.execution_log.record import ExecutionRow, RecordRejections
from spool import DurableQueue

# Each company drains at 50 rows, so normally it has fewer pending; the whole spool holds
# about 50 rows per busy company, or a minute of results, whichever is less.
PENDING_SCAN_ROWS = 5_000
PER_COMPANY_READS = 16  # up to this many companies, each is read by its own index


def pending_rows(
    outbox: DurableQueue,
    *,
    companies: Collection[uuid.UUID] | None,
    execution_ids: Collection[uuid.UUID] | None = None,
    containing: Sequence[str] = (),
) -> list[ExecutionRow]:
    """Recent spool rows of `companies` (None: all), newest first, keeping those with one of
    `execution_ids` (when given) whose record holds every text of `containing` verbatim.

    `containing` only narrows what is decoded: the caller still compares the fields, since
    a value may also appear in another field (a phone number inside the body). Invalid
    records are the drain's business (it dead-letters them) and are left out here.
    """
    keys = None if companies is None else {str(company) for company in companies}
    ids = None if execution_ids is None else [str(execution_id) for execution_id in execution_ids]
    needles = [text for text in containing if written_verbatim(text)]
    # A few companies: each one's own newest rows, by its index. Many: one look at the
    # newest rows of all, kept by company here (one query instead of hundreds).
    by_key = sorted(keys) if keys is not None and len(keys) <= PER_COMPANY_READS else None
    records = outbox.recent(PENDING_SCAN_ROWS, keys=by_key, ids=ids, containing=needles)
    if keys is not None and by_key is None:
        records = [record for record in records if record.key in keys]
    rejections = RecordRejections()
    return [row for record in records if (row := rejections.decode(record)) is not None]


def written_verbatim(text: str) -> bool:
    """Whether a record's JSON holds `text` as it is: printable ASCII without quotes or
    backslashes is never escaped, whichever encoder wrote the record."""
    return bool(text) and all(" " <= ch <= "~" and ch not in '"\\' for ch in text)
