"""A durable SQLite spool with per-key batching and a drain into any idempotent sink.

This package knows nothing of webhooks; the relay builds on it.
"""

from spool.backoff import Backoff
from spool.clock import Clock, utc_now
from spool.database import Operation, SpoolDatabase, WriteOutcome, ensure_private_directory
from spool.drain import Drainer, DrainReport, Outcome, drain_lock
from spool.drain_job import DrainScheduler, FlushReport, flush, wake_on_full_batches
from spool.errors import (
    ConfigSinkError,
    RecordSinkError,
    SinkError,
    SpoolCorruptError,
    SpoolError,
    SpoolFullError,
    SpoolPermissionError,
    TransientSinkError,
)
from spool.locks import FileLock
from spool.policy import DrainPlan, DrainPolicy, KeyBacklog, TakeReason, plan_drain
from spool.queue import (
    AppendReceipt,
    DeadLetter,
    DurableQueue,
    QueueStats,
    Removed,
    SpoolRecord,
)
from spool.salvage import CheckReport, SalvageReport, check_file, salvage
from spool.scheduled_queue import ScheduledItem, ScheduledQueue
from spool.seen import SeenKeys
from spool.sink import Sink

__all__ = [
    "AppendReceipt",
    "Backoff",
    "CheckReport",
    "Clock",
    "ConfigSinkError",
    "DeadLetter",
    "DrainPlan",
    "DrainPolicy",
    "DrainReport",
    "DrainScheduler",
    "Drainer",
    "DurableQueue",
    "FileLock",
    "FlushReport",
    "KeyBacklog",
    "Operation",
    "Outcome",
    "QueueStats",
    "RecordSinkError",
    "Removed",
    "SalvageReport",
    "ScheduledItem",
    "ScheduledQueue",
    "SeenKeys",
    "Sink",
    "SinkError",
    "SpoolCorruptError",
    "SpoolDatabase",
    "SpoolError",
    "SpoolFullError",
    "SpoolPermissionError",
    "SpoolRecord",
    "TakeReason",
    "TransientSinkError",
    "WriteOutcome",
    "check_file",
    "drain_lock",
    "ensure_private_directory",
    "flush",
    "plan_drain",
    "salvage",
    "utc_now",
    "wake_on_full_batches",
]
