"""The audit log: who did what, when, from where, with what result.

Entries never hold secrets: detail keys that look like one are replaced before writing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select

from hub.registry.db import Registry
from hub.security.models import AuditEntry

log = logging.getLogger("dcor.hub.audit")

RESULTS: Final = ("ok", "denied", "failed", "error")
_SECRET_KEY_RE: Final = re.compile(r"pass|secret|token|key|credential|cookie|authorization",
                                   re.IGNORECASE)
REDACTED: Final = "***"
MAX_DETAIL_CHARS: Final = 500


def redact(detail: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``detail`` with secret-looking keys masked and long values cut."""
    out: dict[str, Any] = {}
    for key, value in detail.items():
        if _SECRET_KEY_RE.search(key):
            out[key] = REDACTED
        elif isinstance(value, Mapping):
            out[key] = redact(value)
        elif isinstance(value, str) and len(value) > MAX_DETAIL_CHARS:
            out[key] = value[:MAX_DETAIL_CHARS] + "…"
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class AuditRecord:
    ts: datetime
    actor: str
    role: str
    action: str
    target: str
    source: str
    result: str
    detail: dict[str, Any]


class AuditLog:
    def __init__(self, registry: Registry,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.registry = registry
        self._now = now

    def record(self, *, actor: str, action: str, result: str, role: str = "",
               target: str = "", source: str = "",
               detail: Mapping[str, Any] | None = None) -> None:
        if result not in RESULTS:
            raise ValueError(f"audit result must be one of {RESULTS}")
        entry = AuditEntry(ts=self._now(), actor=actor[:80], role=role[:20],
                           action=action[:64], target=target[:200], source=source[:64],
                           result=result, detail=redact(detail or {}))
        try:
            with self.registry.session() as s:
                s.add(entry)
        except Exception:
            # The action itself has happened; say loudly that its trace is missing.
            log.exception("audit entry lost: %s %s %s -> %s", actor, action, target, result)
            raise

    def query(self, *, limit: int = 200, action: str | None = None,
              actor: str | None = None, result: str | None = None) -> list[AuditRecord]:
        stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        if actor:
            stmt = stmt.where(AuditEntry.actor == actor)
        if result:
            stmt = stmt.where(AuditEntry.result == result)
        with self.registry.session() as s:
            return [AuditRecord(e.ts if e.ts.tzinfo else e.ts.replace(tzinfo=UTC), e.actor,
                                e.role, e.action, e.target, e.source, e.result,
                                dict(e.detail or {}))
                    for e in s.scalars(stmt)]
