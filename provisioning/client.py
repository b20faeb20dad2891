"""The technician's HTTP client of the hub's enrollment API (stdlib only).

The token comes from a file (mode 0600) or ``$DCOR_TOKEN``, never from the command line,
where ``ps`` and the shell history would keep it. Nothing here prints or logs it.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

TOKEN_ENV: Final = "DCOR_TOKEN"


class HubError(RuntimeError):
    """The hub refused or could not be reached; ``status`` 0 means no answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"hub answered {status} {code}: {message}" if status
                         else f"hub unreachable: {message}")
        self.status = status
        self.code = code
        self.message = message


class TokenError(ValueError):
    """No usable token: the message says where to put it."""


def read_token(token_file: Path | None) -> str:
    if token_file is not None:
        try:
            mode = token_file.stat().st_mode
            text = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TokenError(f"cannot read token file {token_file}: {exc.strerror}") from exc
        if mode & 0o077:
            raise TokenError(f"{token_file} is readable by others: run 'chmod 600 "
                             f"{token_file}'")
        if not text:
            raise TokenError(f"{token_file} is empty")
        return text
    text = os.environ.get(TOKEN_ENV, "").strip()
    if not text:
        raise TokenError(f"give --token-file (mode 0600) or set {TOKEN_ENV}; a technician "
                         "gets a personal token on the hub's /account page")
    return text


@dataclass
class HubClient:
    base_url: str
    token: str
    ca_file: Path | None = None  # the hub's CA, for an https:// hub with its own CA
    timeout: float = 30.0
    last_date: datetime | None = None  # the hub's clock, from its last answer

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"--hub must be an http(s) URL, got {self.base_url!r}")
        self.base_url = self.base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"HubClient({self.base_url!r})"

    def _context(self) -> ssl.SSLContext | None:
        if not self.base_url.startswith("https:"):
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/json",
            **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout,
                                        context=self._context()) as resp:
                self._note_date(resp.headers.get("Date"))
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            self._note_date(exc.headers.get("Date") if exc.headers else None)
            try:
                err = json.loads(exc.read()).get("error", {})
            except (ValueError, AttributeError):
                err = {}
            raise HubError(exc.code, str(err.get("code", "error")),
                           str(err.get("message", exc.reason))) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise HubError(0, "unreachable", str(getattr(exc, "reason", exc))) from None

    def _note_date(self, value: str | None) -> None:
        if value:
            with contextlib.suppress(TypeError, ValueError):
                self.last_date = email.utils.parsedate_to_datetime(value)

    def whoami(self) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", "/api/v1/whoami")
        return found

    def enroll(self, payload: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = self.request("POST", "/api/v1/enroll", payload)
        return found

    def replace(self, device_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.request("POST", f"/api/v1/devices/{device_id}/replace", {})
        return found

    def revoke(self, device_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.request("POST", f"/api/v1/devices/{device_id}/revoke", {})
        return found

    def install_check(self, device_id: str, report: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = self.request(
            "POST", f"/api/v1/devices/{device_id}/install-check", report)
        return found
