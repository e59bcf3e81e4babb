"""A durable SQLite spool with per-key batching and a drain into any idempotent sink.

This package knows nothing of webhooks; the relay builds on it.
"""

from spool.backoff import Backoff
from spool.clock import Clock, utc_now
from spool.database import SpoolDatabase
from spool.drain import Drainer, DrainReport, Outcome, drain_lock
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
from spool.scheduler import DrainScheduler, FlushReport, flush
from spool.sink import Sink

__all__ = [
    "AppendReceipt",
    "Backoff",
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
    "Outcome",
    "QueueStats",
    "RecordSinkError",
    "Removed",
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
    "drain_lock",
    "flush",
    "plan_drain",
    "utc_now",
]
