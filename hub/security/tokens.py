"""API tokens: ``dcor_<id>_<secret>`` (pure). The id finds the row; only a SHA-256 of the
256-bit secret is stored (a slow KDF adds nothing for a random secret of that size)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

PREFIX: Final = "dcor_"
_TOKEN_RE: Final = re.compile(r"dcor_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class NewToken:
    id: str
    secret_hash: str
    text: str  # shown once, never stored

    def __repr__(self) -> str:
        return f"NewToken(id={self.id!r})"


def new_token() -> NewToken:
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewToken(token_id, hash_secret(secret), f"{PREFIX}{token_id}_{secret}")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(text: str) -> tuple[str, str] | None:
    """(id, secret), or None when ``text`` is not shaped like one of our tokens."""
    m = _TOKEN_RE.fullmatch(text.strip())
    return (m.group(1), m.group(2)) if m else None


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def new_session_id() -> tuple[str, str]:
    """(cookie value, stored hash) of a web session."""
    sid = secrets.token_urlsafe(32)
    return sid, hash_secret(sid)
