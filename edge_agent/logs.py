"""Log output for the agent and the hub: human text, or one JSON object per line.

Stdlib only, so the agent stays light and the hub can use the same formatter
(``hub.logs`` adds the web app's request id). Selected by ``--log-format json`` or
``DCOR_LOG_FORMAT=json``. Every JSON line carries ``ts`` (UTC, ms), ``level``, ``logger``,
``msg``, the process's fixed fields (``service``, ``device`` on a box) and whatever the call
put in ``extra=`` (``device``, ``request_id``, ...). Secrets never leave: keys that look like
one are masked, and token, bearer, password and URL-credential patterns in the text are
replaced before writing.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

LOG_FORMATS: Final = ("text", "json")
ENV_FORMAT: Final = "DCOR_LOG_FORMAT"
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"
MASK: Final = "***"

_SECRET_KEY_RE: Final = re.compile(
    r"pass|secret|token|key|credential|cookie|authorization", re.IGNORECASE)
# (pattern, replacement): what a secret looks like inside a message or a traceback.
_SECRET_TEXT: Final = (
    (re.compile(r"dcor_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}"), "dcor_" + MASK),  # API tokens
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    (re.compile(r"(?i)((?:password|passwd|secret|token)\s*[=:]\s*['\"]?)[^\s'\",;&]+"),
     r"\1" + MASK),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), r"\1" + MASK + "@"),
)
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


def redact_text(text: str) -> str:
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _clean(key: str, value: Any) -> Any:
    if _SECRET_KEY_RE.search(key):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact_text(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per record. ``fields``: fixed for the process (``service``,
    ``device``); ``context``: read per record (the web app's request id)."""

    def __init__(self, fields: Mapping[str, Any] | None = None,
                 context: Callable[[], Mapping[str, Any]] | None = None) -> None:
        super().__init__()
        self.fields = dict(fields or {})
        self.context = context

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                  .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
            "thread": record.threadName,
        }
        out.update(self.fields)
        if self.context is not None:
            out.update({k: v for k, v in self.context().items() if v is not None})
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = _clean(key, value)
        if record.exc_info:
            out["exc"] = redact_text(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exc"] = redact_text(record.exc_text)
        return json.dumps(out, ensure_ascii=False, default=str)


class RedactingTextFormatter(logging.Formatter):
    """The human format, with the same secret patterns masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def resolve_format(flag: str | None, env: Mapping[str, str] | None = None) -> str:
    """``--log-format`` wins, then ``DCOR_LOG_FORMAT``, then text."""
    env = os.environ if env is None else env
    value = (flag or env.get(ENV_FORMAT) or "text").strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return value


def setup_logging(level: str = "INFO", fmt: str = "text", *,
                  fields: Mapping[str, Any] | None = None,
                  context: Callable[[], Mapping[str, Any]] | None = None,
                  log_file: Path | None = None) -> None:
    """Configure the root logger: stderr in ``fmt``; ``log_file`` (optional) always JSON,
    reopened when logrotate moves it (``WatchedFileHandler``)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level.upper())
    stream = logging.StreamHandler(sys.stderr)
    json_fmt = JsonFormatter(fields, context)
    stream.setFormatter(json_fmt if fmt == "json" else RedactingTextFormatter(TEXT_FORMAT))
    root.addHandler(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.WatchedFileHandler(log_file, encoding="utf-8")
        handler.setFormatter(json_fmt)
        root.addHandler(handler)
    # Libraries' chatter stays out of INFO logs.
    for noisy in ("urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
