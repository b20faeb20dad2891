"""Password hashing (Argon2id via argon2-cffi) and the password policy."""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH: Final = 12
MAX_LENGTH: Final = 256  # a very long password must not turn hashing into a DoS


class PasswordPolicyError(ValueError):
    """The new password is too weak; the message says why."""


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    # OWASP's Argon2id profile (19 MiB, 2 passes, 1 lane): tens of milliseconds on a hub,
    # so a burst of logins cannot starve the web workers; hashes of other parameters still
    # verify and are upgraded at the next login (``needs_rehash``).
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def check_policy(password: str, username: str = "") -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"a password may have at most {MAX_LENGTH} characters")
    if username and username.lower() in password.lower():
        raise PasswordPolicyError("a password must not contain the user name")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """Verified against when the user does not exist, so both cases take as long."""
    return hash_password("dcor-no-such-user-padding")


def needs_rehash(stored_hash: str) -> bool:
    return _hasher().check_needs_rehash(stored_hash)
