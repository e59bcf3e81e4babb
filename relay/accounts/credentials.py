"""The secrets themselves: argon2 password hashes and API token text.

A token is `rly_` + 43 random URL-safe characters (256 bits), so a plain SHA-256 of it is a
safe thing to store (a password needs a slow hash because people choose them; a token of
that entropy cannot be guessed however fast the hash). Its first characters, the prefix, are
stored as well: they find the row and name the token in lists; the rest never leaves the
answer that created it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_MARK = "rly_"
PREFIX_LENGTH = len(TOKEN_MARK) + 12
_hasher = PasswordHasher()  # argon2id with the library's recommended parameters


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return TOKEN_MARK + secrets.token_urlsafe(32)


def looks_like_token(text: str) -> bool:
    return text.startswith(TOKEN_MARK) and len(text) > PREFIX_LENGTH


def token_prefix(token: str) -> str:
    return token[:PREFIX_LENGTH]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def digest_matches(stored: str, token_digest_given: str) -> bool:
    """Constant-time comparison, so the time taken says nothing about how much matched."""
    return hmac.compare_digest(stored.encode(), token_digest_given.encode())
