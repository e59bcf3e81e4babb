"""The process-wide logging state a test may change, and how to put it back."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def logging_restored() -> Iterator[None]:
    """Put the root logger, the chatty libraries' levels and `sys.excepthook` back as they
    were: `configure_logging` (run by every command) installs a handler on the stream of the
    moment, which must not outlive the test that captured it."""
    root = logging.getLogger()
    handlers, level, hook = list(root.handlers), root.level, sys.excepthook
    levels = {logger.name: logger.level for logger in _loggers()}
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:  # configure_logging replaces a handler of its own it finds
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        for logger in _loggers():
            logger.setLevel(levels.get(logger.name, logging.NOTSET))
        sys.excepthook = hook


def _loggers() -> list[logging.Logger]:
    known = list(logging.root.manager.loggerDict.values())
    return [logger for logger in known if isinstance(logger, logging.Logger)]
