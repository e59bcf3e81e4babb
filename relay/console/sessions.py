"""Console sign-in sessions, kept server-side: a cookie holds only a random id, so signing
out or expiry ends a session at once, and each session carries the CSRF token its forms send.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from relay.accounts.principal import Principal
from spool import Clock

COOKIE = "relay_console"
DEFAULT_SESSION_MINUTES = 60.0
MAX_SESSIONS = 10_000  # a flood of sign-ins cannot grow memory without bound


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str
    expires: datetime

    def csrf_matches(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(self.csrf, sent)


class SessionStore:
    """Live sessions by id; a session expires `minutes` after sign-in (no sliding renewal:
    a stolen cookie is good for that long at most)."""

    def __init__(self, clock: Clock, minutes: float = DEFAULT_SESSION_MINUTES) -> None:
        self.clock, self.lifetime = clock, timedelta(minutes=minutes)
        self._sessions: dict[str, Session] = {}

    def open(self, principal: Principal) -> tuple[str, Session]:
        now = self.clock()
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
            while len(self._sessions) >= MAX_SESSIONS:
                del self._sessions[next(iter(self._sessions))]
        session_id = secrets.token_urlsafe(32)
        session = Session(principal, secrets.token_urlsafe(32), now + self.lifetime)
        self._sessions[session_id] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of a cookie; None if unknown or expired (then forgotten)."""
        if session_id is None:
            return None
        session = self._sessions.get(session_id)
        if session is not None and session.expires <= self.clock():
            del self._sessions[session_id]
            return None
        return session

    def close(self, session_id: str | None) -> None:
        if session_id is not None:
            self._sessions.pop(session_id, None)
