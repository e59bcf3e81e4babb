"""A durable SQLite spool with per-key batching and a drain into any idempotent sink.

This package knows nothing of webhooks; the relay builds on it.
"""

from spool.backoff import Backoff
from spool.clock import Clock, utc_now
from spool.database import SpoolDatabase
from spool.drain import Drainer, DrainReport, Outcome
from spool.errors import (
    ConfigSinkError,
    RecordSinkError,
    SinkError,
    SpoolCorruptError,
    SpoolError,
    SpoolFullError,
    TransientSinkError,
)
from spool.policy import DrainPlan, DrainPolicy, KeyBacklog, TakeReason, plan_drain
from spool.queue import AppendReceipt, DeadLetter, DurableQueue, QueueStats, SpoolRecord
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
    "FlushReport",
    "KeyBacklog",
    "Outcome",
    "QueueStats",
    "RecordSinkError",
    "Sink",
    "SinkError",
    "SpoolCorruptError",
    "SpoolDatabase",
    "SpoolError",
    "SpoolFullError",
    "SpoolRecord",
    "TakeReason",
    "TransientSinkError",
    "flush",
    "plan_drain",
    "utc_now",
]
