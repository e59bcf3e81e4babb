"""Pieces shared by the CLI's command modules."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from relay.errors import InputError
from relay.runtime.wiring import open_database
from relay.settings import RelaySettings

Handler = Callable[[argparse.Namespace, RelaySettings], int]
T = TypeVar("T")


class CommandError(Exception):
    """A failure the user can act on: reported as one line, exit code 2."""


@contextmanager
def database(settings: RelaySettings) -> Iterator[Engine]:
    engine = open_database(settings)
    try:
        yield engine
    finally:
        engine.dispose()


def admin(action: Callable[[Engine], T], engine: Engine) -> T:
    """Run a registry or account change, turning its expected failures (the ones the API
    answers with a 4xx) into one-line errors."""
    try:
        return action(engine)
    except InputError as exc:
        raise CommandError(exc.message) from exc
    except sa_exc.SQLAlchemyError as exc:
        detail = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise CommandError(f"database error ({detail}); has `relay migrate` been run?") from exc
