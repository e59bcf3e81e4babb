"""`relay users ...` and `relay tokens ...` as a user runs them, against the suite's
PostgreSQL (and the embedded SQLite), passwords on their standard input: in the test process
(`relay_cli`), except one real process that reads its password from a real pipe."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.accounts import store
from relay.accounts.credentials import password_matches
from relay.db.schema import users
from relay.registry import writes
from spool import utc_now
from tests.relay.test_cli_registry import assert_refused, embedded
from tests.support.environment import relay_env
from tests.support.relay_command import CliResult, InProcessCli, run_relay

PASSWORD = "correct horse battery staple"

Relay = Callable[..., CliResult]


def real_relay(
    env: dict[str, str], *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    result = run_relay(env, *args, stdin=stdin)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def relay(relay_cli: InProcessCli) -> Relay:
    """`relay(env, ARGS..., stdin="")`: the command in the test process, never a traceback."""

    def run(env: dict[str, str], *args: str, stdin: str = "") -> CliResult:
        result = relay_cli(env, *args, stdin=stdin)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    return run


@pytest.fixture
def env(pg_url: str, pg_engine: Engine, spool_path: Path) -> dict[str, str]:
    with pg_engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE users CASCADE"))
    return relay_env(database_url=pg_url, spool_path=spool_path)


def test_users_add_reads_the_password_from_stdin_and_never_prints_it(
    env: dict[str, str], pg_engine: Engine
) -> None:
    company = writes.add_company(pg_engine, "Acme").id

    admin = real_relay(env, "users", "add", "alice", "--role", "admin", stdin=PASSWORD + "\n")
    viewer = real_relay(
        env, "users", "add", "bob", "--role", "viewer", "--company", str(company),
        stdin=PASSWORD + "2\n",
    )  # fmt: skip

    assert admin.returncode == 0, admin.stderr
    assert admin.stdout == "alice\tadmin\t*\tactive\n"
    assert viewer.stdout == f"bob\tviewer\t{company}\tactive\n"
    for result in (admin, viewer):
        assert PASSWORD not in result.stdout + result.stderr
    with pg_engine.connect() as conn:
        rows = conn.execute(sa.select(users.c.name, users.c.password_hash))
        hashes = {row.name: row.password_hash for row in rows}
    assert password_matches(hashes["alice"], PASSWORD)
    assert password_matches(hashes["bob"], PASSWORD + "2")
    listing = real_relay(env, "users", "list")
    assert listing.stdout.splitlines() == [
        "alice\tadmin\t*\tactive",
        f"bob\tviewer\t{company}\tactive",
    ]


def test_users_edit_disable_and_enable(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    company = writes.add_company(pg_engine, "Acme").id
    relay(env, "users", "add", "alice", "--role", "admin", stdin=PASSWORD)

    demoted = relay(env, "users", "edit", "alice", "--role", "viewer", "--company", str(company))
    freed = relay(env, "users", "edit", "alice", "--all-companies")
    renewed = relay(env, "users", "edit", "alice", "--password", stdin="another password\n")
    disabled = relay(env, "users", "disable", "alice")

    assert demoted.stdout == f"alice\tviewer\t{company}\tactive\n"
    assert freed.stdout == "alice\tviewer\t*\tactive\n"
    assert renewed.returncode == 0, renewed.stderr
    assert disabled.stdout == "alice\tviewer\t*\tdisabled\n"
    assert store.login_of(pg_engine, "alice") is None
    assert relay(env, "users", "enable", "alice").stdout == "alice\tviewer\t*\tactive\n"
    login = store.login_of(pg_engine, "alice")
    assert login is not None and password_matches(login.password_hash, "another password")


@pytest.mark.parametrize(
    ("args", "stdin", "phrases"),
    [
        (("users", "add", "alice", "--role", "owner"), PASSWORD, ("invalid choice", "owner")),
        (("users", "add", "alice"), PASSWORD, ("--role",)),
        (("users", "add", "alice", "--role", "admin"), "", ("password", "8 to 1024")),
        (("users", "add", "alice", "--role", "admin"), "short\n", ("8 to 1024",)),
        (("users", "add", "al ice", "--role", "admin"), PASSWORD, ("user name must be",)),
        (("users", "add", "alice", "--role", "admin", "--company", "acme"), PASSWORD,
         ("not a UUID",)),
        (("users", "edit", "alice"), "", ("nothing to change",)),
        (("users", "edit", "nobody", "--role", "admin"), "", ("unknown user 'nobody'",)),
        (("users", "disable", "nobody"), "", ("unknown user 'nobody'",)),
        (("users", "edit", "alice", "--all-companies", "--company", str(uuid.uuid4())), "",
         ("not allowed with argument",)),
    ],
)  # fmt: skip
def test_bad_user_commands_exit_2_with_one_line(
    relay: Relay, env: dict[str, str], args: tuple[str, ...], stdin: str, phrases: tuple[str, ...]
) -> None:
    result = relay(env, *args, stdin=stdin)
    assert_refused(result, *phrases)
    assert relay(env, "users", "list").stdout == ""


def test_a_second_user_of_the_same_name_is_refused(relay: Relay, env: dict[str, str]) -> None:
    assert relay(env, "users", "add", "alice", "--role", "admin", stdin=PASSWORD).returncode == 0
    again = relay(env, "users", "add", "alice", "--role", "viewer", stdin=PASSWORD)
    assert_refused(again, "user 'alice' exists already")


def test_tokens_create_prints_the_token_once_list_never_shows_it(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    company = writes.add_company(pg_engine, "Acme").id
    relay(env, "users", "add", "alice", "--role", "admin", stdin=PASSWORD)

    created = relay(env, "tokens", "create", "--user", "alice", "--scope", "events",
                    "--company", str(company))  # fmt: skip
    default = relay(env, "tokens", "create", "--user", "alice")

    assert created.returncode == 0, created.stderr
    line, shown = created.stdout.splitlines()
    token_id, prefix, scope, user, companies, last_used, state = line.split("\t")
    token = shown.rsplit(" ", 1)[1]
    assert shown.startswith("token (shown once, store it now): rly_")
    assert token.startswith(prefix) and len(prefix) == 16
    uuid.UUID(token_id)
    assert (scope, user, companies, last_used, state) == (
        "events", "alice", str(company), "last used never", "active",
    )  # fmt: skip
    assert default.stdout.split("\t")[2] == "read"  # least privilege unless asked
    listing = relay(env, "tokens", "list")
    assert len(listing.stdout.splitlines()) == 2
    assert prefix in listing.stdout
    assert token not in listing.stdout
    assert token[len(prefix) :] not in listing.stdout
    principal = store.token_principal(pg_engine, token, now=utc_now())
    assert principal is not None and principal.companies == {company}


def test_tokens_revoke_by_prefix_or_id(
    relay: Relay, env: dict[str, str], pg_engine: Engine
) -> None:
    relay(env, "users", "add", "alice", "--role", "admin", stdin=PASSWORD)
    first = relay(env, "tokens", "create", "--user", "alice").stdout.split("\t")
    second = relay(env, "tokens", "create", "--user", "alice").stdout.split("\t")

    by_prefix = relay(env, "tokens", "revoke", first[1])
    by_id = relay(env, "tokens", "revoke", second[0])

    assert by_prefix.stdout == f"token {first[1]} revoked\n"
    assert by_id.stdout == f"token {second[1]} revoked\n"
    assert all("\trevoked 20" in line for line in relay(env, "tokens", "list").stdout.splitlines())
    assert_refused(relay(env, "tokens", "revoke", first[1]), "revoked already")
    assert_refused(relay(env, "tokens", "revoke", "rly_nothing"), "no token has the prefix")


@pytest.mark.parametrize(
    ("args", "phrases"),
    [
        (("tokens", "create", "--user", "nobody"), ("unknown user 'nobody'",)),
        (("tokens", "create", "--user", "viewer", "--scope", "admin"),
         ("cannot have scope admin",)),
        (("tokens", "create", "--user", "viewer", "--scope", "all"), ("invalid choice",)),
        (("tokens", "create", "--user", "viewer", "--company", str(uuid.UUID(int=1))),
         ("unknown company",)),
        (("tokens", "create"), ("--user",)),
        (("tokens", "revoke"), ("PREFIX|ID",)),
    ],
)  # fmt: skip
def test_bad_token_commands_exit_2_with_one_line(
    relay: Relay, env: dict[str, str], args: tuple[str, ...], phrases: tuple[str, ...]
) -> None:
    relay(env, "users", "add", "viewer", "--role", "viewer", stdin=PASSWORD)
    assert_refused(relay(env, *args), *phrases)
    assert relay(env, "tokens", "list").stdout == ""


def test_the_commands_work_on_the_embedded_database(relay: Relay, tmp_path: Path) -> None:
    env = embedded(tmp_path / "var")
    assert relay(env, "migrate").returncode == 0
    assert relay(env, "users", "add", "alice", "--role", "admin", stdin=PASSWORD).returncode == 0
    created = relay(env, "tokens", "create", "--user", "alice", "--scope", "admin")
    assert created.returncode == 0, created.stderr
    assert "alice" in relay(env, "tokens", "list").stdout
