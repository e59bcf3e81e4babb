"""`relay users ...` and `relay tokens ...`: the people who use the management API and their
tokens. A password is read from standard input (or asked for twice on a terminal) and never
printed; a token is printed once, when it is created, and only its hash is kept."""

from __future__ import annotations

import argparse
import getpass
import sys
import uuid
from datetime import datetime
from typing import Any

from relay.accounts import store
from relay.accounts.principal import Role, Scope
from relay.cli.registry import uuid_argument
from relay.cli.support import CommandError, admin, database
from relay.settings import RelaySettings
from spool import utc_now

ROLES = [role.value for role in Role]
SCOPES = [scope.value for scope in Scope]


def add_account_commands(commands: Any) -> None:
    users = commands.add_parser("users", help="add, list, edit and disable users")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    add = user_commands.add_parser(
        "add", help="add a user; the password is read from standard input"
    )
    add.add_argument("name")
    add.add_argument(
        "--role", required=True, choices=ROLES, help="admin: everything; viewer: reads"
    )
    _companies_option(add)
    add.set_defaults(handler=_add_user)
    user_commands.add_parser("list", help="list users").set_defaults(handler=_list_users)
    edit = user_commands.add_parser("edit", help="change a user's role, companies or password")
    edit.add_argument("name")
    edit.add_argument("--role", choices=ROLES)
    limits = edit.add_mutually_exclusive_group()
    _companies_option(limits)
    limits.add_argument(
        "--all-companies", action="store_true", help="lift the limit to some companies"
    )
    edit.add_argument(
        "--password", action="store_true", help="set a new password (read from standard input)"
    )
    edit.set_defaults(handler=_edit_user)
    for command, help_text, disabled in (
        ("disable", "disable a user: its tokens stop working within seconds", True),
        ("enable", "enable a disabled user again", False),
    ):
        switch = user_commands.add_parser(command, help=help_text)
        switch.add_argument("name")
        switch.set_defaults(handler=_switch_user, disabled=disabled)

    tokens = commands.add_parser("tokens", help="create, list and revoke API tokens")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True)
    create = token_commands.add_parser("create", help="create a token; printed once")
    create.add_argument("--user", required=True, help="the user the token acts for")
    create.add_argument(
        "--company", type=uuid_argument, help="limit the token to this company's objects"
    )
    create.add_argument(
        "--scope",
        choices=SCOPES,
        default=Scope.READ.value,
        help="read: the API's reads (default); admin: everything; events: POST /v1/events only",
    )
    create.set_defaults(handler=_create_token)
    token_commands.add_parser(
        "list", help="list tokens (prefix, scope, user, companies, last use; never the token)"
    ).set_defaults(handler=_list_tokens)
    revoke = token_commands.add_parser("revoke", help="revoke a token by its prefix or id")
    revoke.add_argument("token", metavar="PREFIX|ID")
    revoke.set_defaults(handler=_revoke_token)


def _companies_option(parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup) -> None:
    parser.add_argument(
        "--company",
        type=uuid_argument,
        action="append",
        dest="companies",
        metavar="ID",
        help="limit the user to this company (repeat for several; default: every company)",
    )


def read_password() -> str:
    """The new password: asked twice on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise CommandError("the two passwords differ")
        return password
    return sys.stdin.readline().rstrip("\r\n")


# -- users --------------------------------------------------------------------------------------


def _add_user(args: argparse.Namespace, settings: RelaySettings) -> int:
    password = read_password()
    with database(settings) as engine:
        user = admin(
            lambda e: store.add_user(
                e,
                args.name,
                password,
                role=args.role,
                companies_allowed=args.companies,
                now=utc_now(),
            ),
            engine,
        )
    print(_user_line(user))
    return 0


def _list_users(_args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        users = admin(store.list_users, engine)
    for user in users:
        print(_user_line(user))
    return 0


def _edit_user(args: argparse.Namespace, settings: RelaySettings) -> int:
    if not (args.role or args.companies or args.all_companies or args.password):
        raise CommandError(
            "nothing to change: give --role, --company, --all-companies or --password"
        )
    password = read_password() if args.password else None
    with database(settings) as engine:
        user = admin(
            lambda e: store.edit_user(
                e,
                args.name,
                now=utc_now(),
                role=args.role,
                companies_allowed=args.companies,
                every_company=args.all_companies,
                password=password,
            ),
            engine,
        )
    print(_user_line(user))
    return 0


def _switch_user(args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        user = admin(
            lambda e: store.edit_user(e, args.name, now=utc_now(), disabled=args.disabled), engine
        )
    print(_user_line(user))
    return 0


def _user_line(user: store.UserRow) -> str:
    status = "disabled" if user.disabled else "active"
    return f"{user.name}\t{user.role}\t{_companies(user.companies)}\t{status}"


# -- tokens -------------------------------------------------------------------------------------


def _create_token(args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        token, text = admin(
            lambda e: store.create_token(
                e, args.user, scope=args.scope, company_id=args.company, now=utc_now()
            ),
            engine,
        )
    print(_token_line(token))
    print(f"token (shown once, store it now): {text}")
    return 0


def _list_tokens(_args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        tokens = admin(store.list_tokens, engine)
    for token in tokens:
        print(_token_line(token))
    return 0


def _revoke_token(args: argparse.Namespace, settings: RelaySettings) -> int:
    with database(settings) as engine:
        token = admin(lambda e: store.revoke_token(e, args.token, now=utc_now()), engine)
    print(f"token {token.prefix} revoked")
    return 0


def _token_line(token: store.TokenRow) -> str:
    state = f"revoked {_moment(token.revoked_at)}" if token.revoked_at else "active"
    return (
        f"{token.id}\t{token.prefix}\t{token.scope}\t{token.user}\t{_companies(token.companies)}"
        f"\tlast used {_moment(token.last_used_at)}\t{state}"
    )


def _companies(companies: frozenset[uuid.UUID] | None) -> str:
    return "*" if companies is None else ",".join(sorted(str(c) for c in companies)) or "-"


def _moment(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"
