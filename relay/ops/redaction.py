"""Masks secrets in text bound for a log line or an error message.

Two layers: the secret values the process knows (the intake token, the database password,
webhook secrets as the registry loads them) are registered and masked wherever they appear;
and shapes that are secrets whatever their value (`whsec_...`, `Bearer ...`, a password in a
URL or a libpq conninfo) are masked even when nobody registered them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

MASK = "***"

_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), f"whsec_{MASK}"),
    (re.compile(r"(?i)\b(bearer\s+)[^\s'\",;]+"), rf"\g<1>{MASK}"),
    # scheme://user:password@host; user and password as they appear in a URL
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]+@"), rf"\g<1>{MASK}@"),
    (re.compile(r"(?i)\b(password\s*=\s*)('[^']*'|[^\s'\"]+)"), rf"\g<1>{MASK}"),
)


class Redactor:
    """Registered secret values plus the fixed shapes above; safe to use from any thread."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._known: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def register(self, secret: str | None) -> None:
        """Mask `secret` from now on (None and "" are ignored)."""
        self.register_all((secret,))

    def register_all(self, secrets: Iterable[str | None]) -> None:
        """Mask every one of `secrets` from now on, with one compile for the lot.

        A registry load hands over all its webhooks' secrets at once: the pattern of every
        known secret is rebuilt once per call that brings a new one, not once per secret
        (1,000 secrets one by one cost 1,000 compiles of a growing pattern, tens of seconds).
        Every length is masked, however short: a short secret is still one, and it is only
        the log that gets harder to read.
        """
        with self._lock:
            new = {secret for secret in secrets if secret} - self._secrets
            if not new:
                return
            self._secrets |= new
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._known = re.compile("|".join(re.escape(value) for value in ordered))

    def redact(self, text: str) -> str:
        known = self._known
        if known is not None:
            text = known.sub(MASK, text)
        for shape, replacement in _SHAPES:
            text = shape.sub(replacement, text)
        return text


_default = Redactor()
register = _default.register
register_all = _default.register_all
redact = _default.redact
