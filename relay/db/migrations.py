"""Apply the Alembic revisions from code, so `relay migrate` and `alembic upgrade` agree.

Alembic is imported only when a function here runs: it costs about 0.25 s at import (mako,
pygments), which every `relay` process would otherwise pay at start, the dispatcher and
drain children included, although only intake and `relay migrate` touch migrations.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    """Alembic config for this project's migrations, aimed at `database_url`."""
    from alembic.config import Config

    ini = PROJECT_ROOT / "alembic.ini"
    if not ini.exists():
        raise FileNotFoundError(f"alembic.ini not found at {ini}: run from a source checkout")
    config = Config(str(ini))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


def is_current(database_url: str) -> bool:
    """True when the database is at the newest revision (so the relay may start on it)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from relay.db.engine import make_engine

    config = alembic_config(database_url)
    head = ScriptDirectory.from_config(config).get_current_head()
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() == head
    finally:
        engine.dispose()
