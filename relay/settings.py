"""Configuration from `RELAY_*` environment variables (documented in the README)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

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
    shutdown_grace_seconds: float = Field(
        10, ge=0, description="How long deliveries in flight may finish when the relay stops."
    )
    db_timeout_seconds: float = Field(
        30, gt=0, description="Connect and statement timeout for the execution log database."
    )
    retention_days: int = Field(
        90, ge=1, description="Days execution-log rows are kept (PostgreSQL: whole months)."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines for humans (text) or one JSON object per line (json)."
    )

    # -- the relay service (`relay serve`) ----------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `relay serve` listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port `relay serve` listens on.")
    intake_token: SecretStr | None = Field(
        None, description="Bearer token required on POST /v1/events; unset: loopback only."
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1, description="Largest accepted event body.")
    http_timeout_seconds: float = Field(10, gt=0, description="Timeout of one POST attempt.")
    allow_private_destinations: bool = Field(
        False,
        description="POST to loopback, private, link-local and other non-public addresses too "
        "(off: the SSRF guard refuses them when connecting).",
    )
    follow_redirects: bool = Field(
        False, description="Follow up to 5 redirects of a POST (every hop is guarded)."
    )
    max_in_flight: int = Field(64, ge=1, description="Deliveries in flight at once.")
    max_per_host: int = Field(8, ge=1, description="Deliveries in flight to one host at once.")
    max_attempts: int = Field(6, ge=1, description="Attempts per delivery, the first included.")
    # Both read as comma-separated text and parsed once here, not on every attempt.
    retry_schedule_seconds: Annotated[tuple[float, ...], NoDecode] = Field(
        (5, 30, 120, 600, 1800), description="Waits after the 1st, 2nd ... failed attempt."
    )
    logged_events: Annotated[frozenset[str], NoDecode] = Field(
        frozenset({"call-history-was-created"}),
        description="Events whose attempts are logged; * for all.",
    )
    log_payload_max_bytes: int = Field(
        64 * 1024, ge=0, description="Largest request body stored in webhook_executions."
    )
    registry_refresh_seconds: float = Field(
        30, gt=0, description="Full reload of companies and webhooks."
    )
    registry_check_seconds: float = Field(
        2, gt=0, description="How often a cheap query looks for registry changes."
    )
    idempotency_hours: float = Field(24, gt=0, description="How long a caller's id is remembered.")
    background_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="CPU niceness of the dispatcher process: intake goes first.",
    )
    drain_nice: int = Field(
        19,
        ge=0,
        le=19,
        description="CPU niceness of the drain process: when the CPU is short, deliveries "
        "go before their log rows (which wait in the spool meanwhile).",
    )
    console_session_minutes: float = Field(
        60, gt=0, le=7 * 24 * 60, description="How long a web console sign-in lasts."
    )
    # -- the platform source (3C Plus over socket.io, relay/intake/platform) --------------------
    platform: bool = Field(
        True,
        description="Open a socket.io stream per company with a platform token and an active "
        "webhook (`relay serve` runs them in a `relay platform` child).",
    )
    platform_cluster1_url: str = Field(
        "https://socket.3c.plus", description="The platform's cluster1 socket.io URL."
    )
    platform_cluster2_url: str = Field(
        "https://new-socket.3cplus.com.br", description="The platform's cluster2 socket.io URL."
    )
    platform_refused_retry_seconds: float = Field(
        300, gt=0, description="Wait before trying a token the platform refused again."
    )
    platform_locks: bool = Field(
        False,
        description="Several relays on one PostgreSQL: each company's stream is held by one "
        "of them (a PostgreSQL advisory lock per company).",
    )
    ready_max_drain_failure_seconds: float = Field(
        300,
        gt=0,
        description="GET /readyz answers 503 once the drain has failed for this long.",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url_parses(cls, url: str) -> str:
        """Refused here, so no command gets as far as a traceback over it; the message
        leaves the URL out, since it may hold a password."""
        try:
            make_url(url)
        except (ArgumentError, ValueError):
            raise ValueError(
                "not a SQLAlchemy database URL, e.g. postgresql+psycopg://user@host:5432/db "
                "or sqlite:///./var/relay.db"
            ) from None
        return url

    @field_validator("retry_schedule_seconds", mode="before")
    @classmethod
    def _schedule_is_numbers(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            waits = tuple(float(part) for part in value.split(","))
        except ValueError:
            raise ValueError("must be comma-separated seconds, e.g. 5,30,120") from None
        return waits

    @field_validator("retry_schedule_seconds")
    @classmethod
    def _waits_are_positive(cls, waits: tuple[float, ...]) -> tuple[float, ...]:
        if not waits or any(w <= 0 for w in waits):
            raise ValueError("every wait must be more than 0 seconds")
        return waits

    @field_validator("logged_events", mode="before")
    @classmethod
    def _event_names(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(name.strip() for name in value.split(",") if name.strip())
        return value

    def is_logged(self, event: str) -> bool:
        return "*" in self.logged_events or event in self.logged_events

    def secret_values(self) -> list[str]:
        """What no log line or error may show: the intake token and the database password."""
        values = [self.intake_token.get_secret_value()] if self.intake_token else []
        password = make_url(self.database_url).password
        return [*values, password] if password else values

    def cluster_urls(self) -> dict[str, str]:
        """Where each platform cluster's socket.io server is."""
        return {"cluster1": self.platform_cluster1_url, "cluster2": self.platform_cluster2_url}

    def drain_policy(self) -> DrainPolicy:
        return DrainPolicy(
            batch_size=self.batch_size,
            max_age=timedelta(seconds=self.max_age_seconds),
            max_rows_per_cycle=max(self.max_rows_per_transaction, self.batch_size),
        )
