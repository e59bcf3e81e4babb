"""Logs: human lines by default, JSON lines on request, and no secret in any line or error.

Output is read from the real handler's stream (and from real `relay` processes), not from
pytest's caplog, which sees records before any masking.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from relay.ops import redaction
from relay.ops.log_config import configure_logging
from relay.registry.cache import Registry
from relay.registry.writes import new_signing_secret
from relay.settings import RelaySettings
from tests.relay.conftest import add_company, add_webhook
from tests.support.environment import relay_env
from tests.support.logging_state import logging_restored
from tests.support.receivers import RunningReceiver
from tests.support.relay_command import InProcessCli
from tests.support.relay_launcher import RelayProcess
from tests.support.waiting import eventually

log = logging.getLogger("tests.relay.test_logging")


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """Configure logging into a buffer; put the root logger and excepthook back after."""
    with logging_restored():
        yield io.StringIO()


def secret(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex}"


def test_text_is_the_default_format() -> None:
    assert RelaySettings().log_format == "text"


def test_text_lines_read_like_before(output: io.StringIO) -> None:
    configure_logging("text", stream=output)
    log.info("drained %d rows", 3)
    log.debug("not shown without --verbose")
    [line] = output.getvalue().splitlines()
    assert line.endswith(" INFO tests.relay.test_logging: drained 3 rows")


def test_json_lines_parse_and_carry_the_fields(output: io.StringIO) -> None:
    configure_logging("json", verbose=True, stream=output)
    log.debug("drained %d rows", 3)
    try:
        raise ValueError("bad row\nsecond line")
    except ValueError:
        log.exception("drain failed")
    first, second = (json.loads(line) for line in output.getvalue().splitlines())
    assert set(first) == {"ts", "level", "logger", "message"}
    assert (first["level"], first["logger"], first["message"]) == (
        "DEBUG",
        "tests.relay.test_logging",
        "drained 3 rows",
    )
    stamp = datetime.fromisoformat(first["ts"])
    assert stamp.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert second["level"] == "ERROR"
    assert second["message"] == "drain failed"
    assert second["exc_info"].startswith("Traceback")
    assert "ValueError: bad row\nsecond line" in second["exc_info"]


def test_a_second_configuration_replaces_the_first(output: io.StringIO) -> None:
    first = io.StringIO()
    configure_logging("text", stream=first)
    configure_logging("json", stream=output)
    log.info("once")
    assert first.getvalue() == ""
    assert json.loads(output.getvalue())["message"] == "once"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_registered_secrets_never_reach_the_stream(output: io.StringIO, log_format: str) -> None:
    token, password = secret("token"), secret('pass"word\\')  # JSON escapes " and \
    webhook_secret = secret("plain-webhook-secret")
    configure_logging(log_format, stream=output, secrets=[token, password, None])
    redaction.register(webhook_secret)
    log.warning("intake refused token %s and secret %s", token, webhook_secret)
    try:
        raise psycopg.OperationalError(
            f'connection failed: FATAL: password authentication failed (password "{password}")'
        )
    except psycopg.OperationalError:
        log.exception("database down")
    text = output.getvalue()
    for value in (token, password, webhook_secret, json.dumps(password)[1:-1]):
        assert value not in text
    assert text.count(redaction.MASK) >= 3


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secret_shapes_are_masked_unregistered(output: io.StringIO, log_format: str) -> None:
    configure_logging(log_format, stream=output)
    whsec = new_signing_secret()
    url_password = secret("url-pw")
    log.info("signing with %s", whsec)
    log.info("header: Authorization: Bearer %s", secret("bearer"))
    log.info("conninfo host=db password=%s", secret("conninfo-pw"))
    try:
        raise RuntimeError(f"cannot reach postgresql+psycopg://relay:{url_password}@db:5432/x")
    except RuntimeError:
        log.exception("migration failed")
    text = output.getvalue()
    assert whsec not in text and whsec[:6] in text  # the whsec_ prefix stays: it says what
    assert "bearer-" not in text and "conninfo-pw" not in text
    assert url_password not in text
    assert "postgresql+psycopg://relay:***@db:5432/x" in text.replace("\\", "")


def test_the_registry_registers_webhook_secrets_as_it_loads(
    pg_engine: Engine, receiver: RunningReceiver, output: io.StringIO
) -> None:
    plain = secret("a-secret-without-a-known-shape")
    add_webhook(pg_engine, add_company(pg_engine), f"{receiver.url}/ok", secret=plain)
    assert Registry(pg_engine).refresh()
    configure_logging("text", stream=output)
    log.info("posting with %s", plain)
    assert plain not in output.getvalue()


def test_uncaught_exceptions_go_through_the_masking_handler(output: io.StringIO) -> None:
    configure_logging("json", stream=output)
    password = secret("crash-pw")
    redaction.register(password)
    try:
        raise RuntimeError(f"bug while using {password}")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    [entry] = [json.loads(line) for line in output.getvalue().splitlines()]
    assert entry["level"] == "CRITICAL"
    assert "RuntimeError: bug while using ***" in entry["exc_info"]


# -- the `relay` command, and a real `relay serve` -------------------------------------------------


def test_a_bad_log_format_exits_2_naming_the_variable(
    relay_cli: InProcessCli, tmp_path: Path
) -> None:
    env = relay_env(
        database_url="sqlite:///" + str(tmp_path / "db" / "relay.db"),
        spool_path=tmp_path / "s" / "spool.db",
        log_format="yaml",
    )
    result = relay_cli(env, "spool", "status")
    assert result.returncode == 2
    assert "RELAY_LOG_FORMAT" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_error_message_does_not_show_the_database_password(
    relay_cli: InProcessCli, tmp_path: Path
) -> None:
    password = secret("unreachable-pw")
    env = relay_env(
        database_url=f"postgresql+psycopg://relay:{password}@127.0.0.1:1/x",
        spool_path=tmp_path / "s.db",
    )
    result = relay_cli(env, "-v", "migrate")
    assert result.returncode == 2
    assert "migration failed" in result.stderr
    assert password not in result.stderr + result.stdout


def test_a_serving_relay_never_logs_its_secrets(
    pg_url: str,
    pg_engine: Engine,
    receiver: RunningReceiver,
    relay_processes: Callable[..., RelayProcess],
) -> None:
    token, password, plain = secret("intake-token"), secret("db-pw"), secret("plain-hook")
    url_password = secret("hook-url-pw")
    whsec = new_signing_secret()
    company = add_company(pg_engine)
    add_webhook(pg_engine, company, f"{receiver.url}/ok", secret=whsec)
    # Failures are logged with the URL: this one carries a password of its own.
    failing = receiver.url.replace("http://", f"http://hook:{url_password}@") + "/status/500"
    add_webhook(pg_engine, company, failing, secret=plain)
    # The suite's server trusts local connections: the password is sent, never checked.
    url = make_url(pg_url).set(password=password).render_as_string(hide_password=False)
    relay = relay_processes(
        database_url=url,
        intake_token=token,
        log_format="json",
        max_attempts=2,
        retry_schedule_seconds="0.2",
    ).start()
    try:
        for bearer in (token, "a-wrong-token"):
            answer = relay.post(company, token=bearer)
            assert answer.status_code == (202 if bearer == token else 401)
        assert eventually(lambda: len(receiver.receiver.on("/status/500")) == 2, timeout=30)
        assert eventually(lambda: len(receiver.receiver.on("/ok")) == 1, timeout=30)
    finally:
        relay.stop_cleanly()
    text = relay.log_text()
    assert "/status/500 failed" in text  # the line that would show the URL's password
    for value in (token, password, plain, whsec, url_password, "a-wrong-token"):
        assert value not in text, f"{value} leaked into the relay's output"
    lines = text.splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
