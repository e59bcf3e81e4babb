"""Who is asking, and what they may do: the one place the API and intake ask."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """A user's role: `admin` does everything, `viewer` only reads."""

    ADMIN = "admin"
    VIEWER = "viewer"


class Scope(StrEnum):
    """What a token opens: the API's reads, everything, or only `POST /v1/events`."""

    READ = "read"
    ADMIN = "admin"
    EVENTS = "events"


# A viewer reads; its tokens may read, or post events (a company system's intake credential).
SCOPES_OF = {Role.ADMIN: frozenset(Scope), Role.VIEWER: frozenset({Scope.READ, Scope.EVENTS})}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the user, the role, the scope of the credential used, and
    the companies it may see (None: every company)."""

    user: str
    role: Role
    scope: Scope
    companies: frozenset[uuid.UUID] | None

    def can_read(self) -> bool:
        return self.scope in (Scope.READ, Scope.ADMIN)

    def can_write(self) -> bool:
        return self.scope is Scope.ADMIN and self.role is Role.ADMIN

    def can_post_events(self) -> bool:
        return self.scope is Scope.EVENTS or self.can_write()

    def sees(self, company_id: uuid.UUID) -> bool:
        return self.companies is None or company_id in self.companies

    @property
    def every_company(self) -> bool:
        """Unlimited: may also change what belongs to no company (the event catalog, new
        companies)."""
        return self.companies is None


def effective_companies(
    user_companies: frozenset[uuid.UUID] | None, token_company: uuid.UUID | None
) -> frozenset[uuid.UUID] | None:
    """A token sees its user's companies, narrowed to its own company when it has one."""
    if token_company is None:
        return user_companies
    if user_companies is None or token_company in user_companies:
        return frozenset({token_company})
    return frozenset()  # the user lost that company since: the token sees nothing
