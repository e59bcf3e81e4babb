"""Configuration from `RELAY_*` environment variables (documented in the README)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from spool import DrainPolicy

DEFAULT_DATABASE_URL = "sqlite:///./var/relay.db"
GIB = 1024**3


class RelaySettings(BaseSettings):
    """Every knob of the relay, validated at start so a typo fails loudly, not later."""

    model_config = SettingsConfigDict(env_prefix="RELAY_", extra="ignore", frozen=True)

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the execution log; production: postgresql+psycopg://...",
    )
    spool_path: Path = Field(Path("./var/spool.db"), description="The SQLite spool file.")
    batch_size: int = Field(50, ge=1, le=10_000, description="Rows per company per batch.")
    max_age_seconds: float = Field(60, gt=0, description="Oldest a pending row may get.")
    drain_interval_seconds: float = Field(1, gt=0, description="How often the drain job runs.")
    spool_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL", description="SQLite synchronous level of the spool."
    )
    spool_max_bytes: int = Field(GIB, gt=0, description="Bound on live spool data.")
    max_rows_per_transaction: int = Field(
        10_000, ge=1, description="Most rows one drain transaction carries."
    )
    shutdown_flush_seconds: float = Field(
        30, ge=0, description="How long a shutdown may spend flushing the spool."
    )
    db_timeout_seconds: float = Field(
        30, gt=0, description="Connect and statement timeout for the execution log database."
    )

    def drain_policy(self) -> DrainPolicy:
        return DrainPolicy(
            batch_size=self.batch_size,
            max_age=timedelta(seconds=self.max_age_seconds),
            max_rows_per_cycle=max(self.max_rows_per_transaction, self.batch_size),
        )
