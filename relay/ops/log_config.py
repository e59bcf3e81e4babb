"""Logging for the `relay` command: human lines or JSON lines, secrets masked in both.

Masking happens in the formatter of the one root handler, on the finished text (message,
exception and stack alike), so no logger, ours or a library's, can print a secret by
formatting it differently.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, TextIO

from relay.ops import redaction

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A line per scheduler run, per skipped run, per POST, and alembic's seven "setup plugin"
# lines at every start (its migration progress stays): only with --verbose.
_CHATTY = {
    "apscheduler": logging.ERROR,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "alembic.runtime.plugins": logging.WARNING,
}

log = logging.getLogger(__name__)


class _RelayHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs (told apart so a second call replaces it)."""


class RedactingTextFormatter(logging.Formatter):
    """The classic one-line format, masked."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redaction.redact(super().format(record))


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO-8601, UTC), level, logger, message, and exc_info /
    stack_info as text when present. Values are masked before encoding, so JSON escaping
    cannot hide a secret from the masking."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redaction.redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exc_info"] = redaction.redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack_info"] = redaction.redact(self.formatStack(record.stack_info))
        return json.dumps(entry)  # ASCII-escaped: a stray surrogate cannot break the line


def configure_logging(
    log_format: LogFormat,
    *,
    verbose: bool = False,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record to one masked handler on `stream` (default stderr).

    `secrets` are registered for masking first. Calling it again replaces the handler it
    installed before, so it is safe in tests. Uncaught exceptions are logged through it too,
    so a crash's traceback is masked and, in JSON mode, still one JSON line.
    """
    redaction.register_all(secrets)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _RelayHandler)]:
        root.removeHandler(old)
    handler = _RelayHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLinesFormatter() if log_format == "json" else RedactingTextFormatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for chatty, level in _CHATTY.items():
        logging.getLogger(chatty).setLevel(logging.DEBUG if verbose else level)
    sys.excepthook = _log_uncaught
    return handler


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    log.critical("uncaught exception", exc_info=(kind, error, traceback))
