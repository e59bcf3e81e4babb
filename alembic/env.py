"""Alembic environment: migrates the database named by RELAY_DATABASE_URL.

`relay migrate` passes its URL through `config.attributes["database_url"]`; plain
`alembic upgrade head` reads the same settings the relay does.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from relay.db.engine import make_engine
from relay.settings import RelaySettings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else RelaySettings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_database_url(), literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_database_url())
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                render_as_batch=connection.dialect.name == "sqlite",
                transactional_ddl=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
