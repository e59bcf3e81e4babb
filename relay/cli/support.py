"""Pieces shared by the CLI's command modules."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from relay.runtime.wiring import open_database
from relay.settings import RelaySettings

Handler = Callable[[argparse.Namespace, RelaySettings], int]


class CommandError(Exception):
    """A failure the user can act on: reported as one line, exit code 2."""


@contextmanager
def database(settings: RelaySettings) -> Iterator[Engine]:
    engine = open_database(settings)
    try:
        yield engine
    finally:
        engine.dispose()
