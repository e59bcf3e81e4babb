"""Pieces shared by the CLI's command modules."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from relay.database import make_engine
from relay.settings import RelaySettings

Handler = Callable[[argparse.Namespace, RelaySettings], int]


class CommandError(Exception):
    """A failure the user can act on: reported as one line, exit code 2."""


@contextmanager
def database(settings: RelaySettings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url, timeout_seconds=settings.db_timeout_seconds)
    try:
        yield engine
    finally:
        engine.dispose()
