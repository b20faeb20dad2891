"""Users, web sessions and API tokens in the registry database.

Every check answers with a reason (for the audit log) but callers show people one generic
message, so a guesser learns nothing about which part was wrong.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.registry.db import Registry
from hub.security import passwords, tokens
from hub.security.models import ApiToken, User, WebSession
from hub.security.ratelimit import lockout_until

ROLES: Final = ("operator", "technician", "admin")
@functools.cache
def desks() -> tuple[str, ...]:
    """The room's desks: one list for the whole hub, the one the alert rules route to."""
    from hub.alerts.rules import default_rules

    return tuple(d.id for d in default_rules().desks)
MAX_TOKEN_TTL: Final = timedelta(days=30)


class UserError(ValueError):
    """A user or token request is invalid (unknown user, bad role, weak password...)."""


def _aware(t: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored here is UTC.
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


@dataclass(frozen=True)
class Principal:
    """Who is asking: a logged-in person, a token holder, or nobody."""

    username: str
    role: str  # operator | technician | admin | viewer (anonymous wall screen) | "" (nobody)
    desk: str = ""
    user_id: int = 0
    via: str = "anonymous"  # session | token | anonymous | test
    token_id: str = ""

    @property
    def authenticated(self) -> bool:
        return self.via in ("session", "token", "test")


ANONYMOUS: Final = Principal(username="anonymous", role="")


@dataclass(frozen=True)
class LoginResult:
    principal: Principal | None
    reason: str  # ok | bad_credentials | locked | inactive
    locked_until: datetime | None = None


@dataclass(frozen=True)
class TokenResult:
    principal: Principal | None
    reason: str  # ok | malformed | unknown | expired | revoked | used_up | inactive
    token_id: str = ""


def _principal(u: User, via: str, token_id: str = "") -> Principal:
    return Principal(u.username, u.role, u.desk, u.id, via, token_id)


class SecurityStore:
    def __init__(self, registry: Registry, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 lock_threshold: int = 5, lock_duration: timedelta = timedelta(minutes=15),
                 session_idle: timedelta = timedelta(hours=8),
                 session_max: timedelta = timedelta(hours=12)) -> None:
        self.registry = registry
        self.now = now
        self.lock_threshold = lock_threshold
        self.lock_duration = lock_duration
        self.session_idle = session_idle
        self.session_max = session_max

    # --- users ----------------------------------------------------------------------------

    def create_user(self, username: str, password: str, role: str, *, desk: str = "",
                    display_name: str = "") -> Principal:
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}")
        if role == "operator" and desk not in desks():
            raise UserError(f"an operator needs a desk: one of {', '.join(desks())}")
        if role != "operator" and desk:
            raise UserError("only operators sit at a desk")
        if not (3 <= len(username) <= 64) or not username.replace("-", "").replace(
                "_", "").replace(".", "").isalnum():
            raise UserError("a user name has 3-64 letters, digits, '.', '-' or '_'")
        passwords.check_policy(password, username)
        with self.registry.session() as s:
            if s.scalar(select(User).where(User.username == username)) is not None:
                raise UserError(f"user {username!r} exists already")
            u = User(username=username, display_name=display_name or username, role=role,
                     desk=desk, password_hash=passwords.hash_password(password),
                     active=True, failed_logins=0, created_at=self.now())
            s.add(u)
            s.flush()
            return _principal(u, "session")

    def set_password(self, username: str, password: str) -> None:
        passwords.check_policy(password, username)
        with self.registry.session() as s:
            u = self._user(s, username)
            u.password_hash = passwords.hash_password(password)
            u.failed_logins, u.locked_until = 0, None
            s.execute(delete(WebSession).where(WebSession.user_id == u.id))

    def set_active(self, username: str, active: bool) -> None:
        """Disabling also ends the user's sessions and revokes the user's tokens."""
        with self.registry.session() as s:
            u = self._user(s, username)
            u.active = active
            if not active:
                s.execute(delete(WebSession).where(WebSession.user_id == u.id))
                for t in s.scalars(select(ApiToken).where(ApiToken.user_id == u.id)):
                    t.revoked = True

    def unlock(self, username: str) -> None:
        with self.registry.session() as s:
            u = self._user(s, username)
            u.failed_logins, u.locked_until = 0, None

    def list_users(self) -> list[User]:
        with self.registry.session() as s:
            return list(s.scalars(select(User).order_by(User.username)))

    @staticmethod
    def _user(s: Session, username: str) -> User:
        u = s.scalar(select(User).where(User.username == username))
        if u is None:
            raise UserError(f"no user {username!r}")
        return u

    # --- login ----------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> LoginResult:
        """Check a password; count failures and lock the account after too many."""
        now = self.now()
        with self.registry.session() as s:
            u = s.scalar(select(User).where(User.username == username))
            if u is None:
                passwords.verify_password(passwords.dummy_hash(), password)  # same time
                return LoginResult(None, "bad_credentials")
            locked = _aware(u.locked_until)
            if locked is not None and locked > now:
                # Checked before the password, so a locked account gives a guesser nothing.
                return LoginResult(None, "locked", locked)
            if not passwords.verify_password(u.password_hash, password):
                u.failed_logins += 1
                u.locked_until = lockout_until(u.failed_logins, now, self.lock_threshold,
                                               self.lock_duration)
                reason = "locked" if u.locked_until else "bad_credentials"
                return LoginResult(None, reason, _aware(u.locked_until))
            if not u.active:
                return LoginResult(None, "inactive")
            u.failed_logins, u.locked_until = 0, None
            if passwords.needs_rehash(u.password_hash):
                u.password_hash = passwords.hash_password(password)
            return LoginResult(_principal(u, "session"), "ok")

    # --- web sessions ---------------------------------------------------------------------

    def create_session(self, user_id: int, source: str) -> str:
        sid, sid_hash = tokens.new_session_id()
        now = self.now()
        with self.registry.session() as s:
            s.add(WebSession(id_hash=sid_hash, user_id=user_id, created_at=now,
                             last_seen_at=now, expires_at=now + self.session_max,
                             source=source[:64]))
        return sid

    def session_principal(self, sid: str) -> Principal | None:
        now = self.now()
        with self.registry.session() as s:
            row = s.get(WebSession, tokens.hash_secret(sid))
            if row is None:
                return None
            expires, seen = _aware(row.expires_at), _aware(row.last_seen_at)
            assert expires is not None and seen is not None
            if expires <= now or seen + self.session_idle <= now:
                s.delete(row)
                return None
            u = s.get(User, row.user_id)
            if u is None or not u.active:
                s.delete(row)
                return None
            if now - seen > timedelta(minutes=1):  # do not write on every request
                row.last_seen_at = now
            return _principal(u, "session")

    def end_session(self, sid: str) -> None:
        with self.registry.session() as s:
            s.execute(delete(WebSession).where(WebSession.id_hash == tokens.hash_secret(sid)))

    # --- API tokens -----------------------------------------------------------------------

    def issue_token(self, username: str, ttl: timedelta, *, uses: int | None = None,
                    label: str = "") -> tuple[tokens.NewToken, datetime]:
        """A personal token for ``username``; its text is returned once and never stored."""
        if not timedelta(minutes=1) <= ttl <= MAX_TOKEN_TTL:
            raise UserError(f"a token lives from 1 minute to {MAX_TOKEN_TTL.days} days")
        if uses is not None and uses < 1:
            raise UserError("uses must be at least 1 (or unlimited)")
        new = tokens.new_token()
        now = self.now()
        with self.registry.session() as s:
            u = self._user(s, username)
            if not u.active:
                raise UserError(f"user {username!r} is disabled")
            if u.role not in ("technician", "admin"):
                raise UserError("only technicians and admins hold API tokens")
            s.add(ApiToken(id=new.id, user_id=u.id, secret_hash=new.secret_hash,
                           label=label[:100], created_at=now, expires_at=now + ttl,
                           uses_left=uses, revoked=False))
        return new, now + ttl

    def check_token(self, text: str, *, consume: bool) -> TokenResult:
        """Validate a bearer token; ``consume`` spends one use of a limited token."""
        parsed = tokens.parse_token(text)
        if parsed is None:
            return TokenResult(None, "malformed")
        token_id, secret = parsed
        now = self.now()
        with self.registry.session() as s:
            row = s.get(ApiToken, token_id)
            if row is None or not tokens.secret_matches(secret, row.secret_hash):
                return TokenResult(None, "unknown", token_id)
            if row.revoked:
                return TokenResult(None, "revoked", token_id)
            expires = _aware(row.expires_at)
            assert expires is not None
            if expires <= now:
                return TokenResult(None, "expired", token_id)
            if row.uses_left is not None and row.uses_left <= 0:
                return TokenResult(None, "used_up", token_id)
            u = s.get(User, row.user_id)
            if u is None or not u.active:
                return TokenResult(None, "inactive", token_id)
            row.last_used_at = now
            if consume and row.uses_left is not None:
                row.uses_left -= 1
            return TokenResult(_principal(u, "token", token_id), "ok", token_id)

    def revoke_token(self, token_id: str) -> bool:
        with self.registry.session() as s:
            row = s.get(ApiToken, token_id)
            if row is None:
                return False
            row.revoked = True
            return True

    def list_tokens(self, username: str | None = None) -> list[tuple[ApiToken, str]]:
        with self.registry.session() as s:
            stmt = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
            if username:
                stmt = stmt.where(User.username == username)
            return [(t, name) for t, name in s.execute(stmt.order_by(ApiToken.created_at))]


def consume_token_use(registry: Registry, token_id: str) -> bool:
    """Spend one use of a limited token, atomically (two enrollments racing on the last use
    cannot both win). True when the token had a use left or is unlimited."""
    from sqlalchemy import update

    with registry.session() as s:
        row = s.get(ApiToken, token_id)
        if row is None:
            return False
        if row.uses_left is None:
            return True
        result = s.execute(update(ApiToken)
                           .where(ApiToken.id == token_id, ApiToken.uses_left > 0)
                           .values(uses_left=ApiToken.uses_left - 1))
        return bool(getattr(result, "rowcount", 0))
