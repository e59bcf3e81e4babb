"""From a bearer token or a password, and the client's address, to a `Principal`.

Token lookups are cached for `cache_seconds`: a busy token costs its process one query every
couple of seconds, not one per request, and a revoked token, or one whose user was disabled,
stops working within that time on a running relay. A known token is never checked on the
request's path: once its answer is older, the request gets it and a background task asks the
database again, so intake's 202 never waits for the database (what waits is only a token's
first use). While the database cannot be asked, a token keeps its last answer, so a
company's intake credential keeps working through an outage as the intake token does
(nobody can revoke one meanwhile either); a token never seen before gets 503. Failures are
rate limited per client address (`FailureLimiter`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime, timedelta

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy import Engine

from relay.accounts import store
from relay.accounts.credentials import (
    hash_password,
    looks_like_token,
    password_matches,
    token_digest,
    token_prefix,
)
from relay.accounts.principal import Principal
from relay.accounts.rate_limit import FailureLimiter, RateLimited
from relay.errors import InputError
from spool import Clock, utc_now

log = logging.getLogger(__name__)

CACHE_SECONDS = 2.0
MAX_CACHED = 10_000
AUTHORIZATION = "authorization"
RETRY_AFTER_UNCHECKED = 5


class CredentialsUnchecked(InputError):
    """503: the database cannot be asked about a token it has not answered for yet."""

    def __init__(self) -> None:
        super().__init__(
            503, AUTHORIZATION, "the token cannot be checked right now (database unavailable)"
        )
        self.retry_after = RETRY_AFTER_UNCHECKED


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; 401 when there is none."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InputError(401, AUTHORIZATION, "missing bearer token")
    return token


def challenge_headers(error: InputError) -> dict[str, str]:
    """The headers that go with an authentication failure's answer."""
    if isinstance(error, RateLimited | CredentialsUnchecked):
        return {"retry-after": str(error.retry_after)}
    if error.status == 401:
        return {"www-authenticate": "Bearer"}
    return {}


class Authenticator:
    """Tokens and passwords checked against the accounts tables, tokens cached briefly."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = utc_now,
        cache_seconds: float = CACHE_SECONDS,
        limiter: FailureLimiter | None = None,
    ) -> None:
        self.engine, self.clock = engine, clock
        self.cache_time = timedelta(seconds=cache_seconds)
        self.limiter = limiter or FailureLimiter(clock=clock)
        # token digest -> (principal, fresh until); only the event loop's thread touches it
        self._cache: dict[str, tuple[Principal, datetime]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        # user name -> (principal, or None once disabled; fresh until), for console sessions
        self._users: dict[str, tuple[Principal | None, datetime]] = {}

    async def authenticate(self, authorization: str | None, client: str) -> Principal:
        """The principal of an `Authorization` header: 401 without a live token, 429 once
        `client` failed too often."""
        return await self.token_principal(bearer_token(authorization), client)

    async def token_principal(self, token: str, client: str) -> Principal:
        """The principal of a token (`rly_...`): from the cache (asking again in the
        background once the answer is old), else from the database in a worker thread;
        401 if it is unknown, revoked or its user disabled."""
        self.limiter.check(client)
        digest = token_digest(token)
        now = self.clock()
        cached = self._cache.get(digest)
        if cached is not None:
            if now >= cached[1] and digest not in self._refreshing:
                task = asyncio.get_running_loop().create_task(self._refresh(token, digest, now))
                self._refreshing[digest] = task
            return cached[0]
        principal = await self._lookup(token, now) if looks_like_token(token) else None
        if principal is None:
            self.limiter.fail(client)
            raise InputError(401, AUTHORIZATION, "invalid bearer token")
        self._remember(digest, principal, now)
        return principal

    async def _lookup(self, token: str, now: datetime) -> Principal | None:
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(store.token_principal, self.engine, token, now=now)
            )
        except sa.exc.SQLAlchemyError as exc:
            raise CredentialsUnchecked() from exc

    async def _refresh(self, token: str, digest: str, now: datetime) -> None:
        """Ask the database about a known token again; keep its last answer if it cannot."""
        try:
            principal = await self._lookup(token, now)
        except CredentialsUnchecked as exc:
            log.warning("token %s keeps its last answer: %s", token_prefix(token), exc.__cause__)
            kept = self._cache.get(digest)
            if kept is not None:  # ask again once this answer is old again
                self._remember(digest, kept[0], now)
            return
        finally:
            del self._refreshing[digest]
        if principal is None:  # revoked, disabled: the next use is refused
            self._cache.pop(digest, None)
        else:
            self._remember(digest, principal, now)

    def login(self, name: str, password: str, client: str) -> Principal:
        """The principal of a user's name and password (blocking: argon2 takes tens of ms,
        call it from a worker thread); 401 if either is wrong or the user is disabled."""
        self.limiter.check(client)
        found = store.login_of(self.engine, name)
        matches = password_matches(found.password_hash if found else _nobody_hash(), password)
        if found is None or not matches:
            self.limiter.fail(client)
            raise InputError(401, AUTHORIZATION, "wrong user name or password")
        return found.principal

    async def user_principal(self, name: str, signed_in_as: Principal) -> Principal | None:
        """What a signed-in user may do now, so that disabling a user or changing their role
        or companies reaches their open console sessions within `cache_seconds`: their
        principal as the database has it, None once disabled or gone. While the database
        cannot be asked, the last answer (or what they signed in with) stands."""
        now = self.clock()
        cached = self._users.get(name)
        if cached is not None and now < cached[1]:
            return cached[0]
        try:
            found = await anyio.to_thread.run_sync(store.login_of, self.engine, name)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("user %s keeps their last answer: %s", name, exc)
            return signed_in_as if cached is None else cached[0]
        if len(self._users) >= MAX_CACHED:
            self._users.clear()
        principal = None if found is None else found.principal
        self._users[name] = (principal, now + self.cache_time)
        return principal

    def _remember(self, digest: str, principal: Principal, now: datetime) -> None:
        if len(self._cache) >= MAX_CACHED:
            self._cache = {key: kept for key, kept in self._cache.items() if now < kept[1]}
            while len(self._cache) >= MAX_CACHED:
                del self._cache[next(iter(self._cache))]
        self._cache[digest] = (principal, now + self.cache_time)


@functools.cache
def _nobody_hash() -> str:
    """Checked when the user does not exist, so that a wrong name takes as long as a wrong
    password (made on first use: hashing costs tens of milliseconds)."""
    return hash_password("no such user: the answer must take as long as for one")
