"""The admin-edited rule file, reloaded when it changes, without a restart.

``RuleFile.current()`` looks at the file's stat (cheap: call it every evaluation); when size,
mtime or inode changed it reads the text and, when the text changed too, validates it. A file
that does not validate (or cannot be read, or is gone) keeps the rules that were last good:
the error is logged once per broken version and counted. With no path, the packaged
``default_rules.yaml`` is used and never reloaded.

A file being written is usually caught half-written at most once: the next stat differs
again and the finished text is read then.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hub.alerts.rules import RuleProblem, RulesError, RuleSet, default_rules, parse_rules

log = logging.getLogger("dcor.hub.alerts.rules")

_Signature = tuple[int, int, int, int]  # (device, inode, size, mtime_ns)


@dataclass
class ReloadStats:
    loads: int = 0  # successful (re)loads, the first one included
    errors: int = 0  # broken versions seen (each counted once)
    last_error: str = ""


class RuleFile:
    """Rules from ``path`` (None: the packaged defaults). The first load must succeed:
    ``RulesError`` names every problem with its line, as ``python -m hub.alerts.rules``."""

    def __init__(self, path: str | os.PathLike[str] | None,
                 on_change: Callable[[RuleSet], None] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.stats = ReloadStats()
        self._on_change = on_change
        self._sig: _Signature | None = None
        self._digest = ""
        self._last_broken = ""  # the broken version last reported, so each is logged once
        self._lock = threading.Lock()
        if self.path is None:
            self._rules = default_rules()
        else:
            sig = self._stat()
            text = self._read()
            self._rules = parse_rules(text, str(self.path))
            self._sig, self._digest = sig, _digest(text)
        self.stats.loads = 1

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else "(packaged defaults)"

    def current(self) -> RuleSet:
        """The newest valid rules; reloads first when the file changed since the last look.
        Safe from several threads (the web app's requests)."""
        if self.path is None:
            return self._rules
        with self._lock:
            return self._current()

    def _current(self) -> RuleSet:
        try:
            sig = self._stat()
        except RulesError as exc:
            self._broken(f"missing:{exc}", exc)
            return self._rules
        if sig == self._sig:
            return self._rules
        try:
            text = self._read()
        except RulesError as exc:
            self._broken(f"unreadable:{exc}", exc)
            return self._rules
        self._sig = sig
        digest = _digest(text)
        if digest == self._digest:
            self._last_broken = ""
            return self._rules  # touched, rewritten with the same text, or back after a gap
        self._digest = digest
        try:
            rules = parse_rules(text, str(self.path))
        except RulesError as exc:
            self._broken(digest, exc, force=True)
            return self._rules
        self._rules = rules
        self.stats.loads += 1
        self._last_broken = ""
        log.info("alert rules reloaded from %s: %d rules, %d desks", self.path,
                 len(rules.by_id), len(rules.desks))
        if self._on_change is not None:
            self._on_change(rules)
        return rules

    def _broken(self, key: str, exc: RulesError, force: bool = False) -> None:
        if key == self._last_broken and not force:
            return
        self._last_broken = key
        self.stats.errors += 1
        self.stats.last_error = str(exc)
        log.error("%s\nKeeping the rules loaded before (%d rules).", exc,
                  len(self._rules.by_id))

    def _stat(self) -> _Signature:
        assert self.path is not None
        try:
            st = self.path.stat()
        except OSError as exc:
            raise RulesError(str(self.path), _problem(exc)) from exc
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _read(self) -> str:
        assert self.path is not None
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RulesError(str(self.path), _problem(exc)) from exc


def _problem(exc: Exception) -> list[RuleProblem]:
    reason = getattr(exc, "strerror", None) or str(exc)
    return [RuleProblem(0, "", f"cannot read: {reason}")]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
