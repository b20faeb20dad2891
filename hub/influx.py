"""InfluxDB over its v1 HTTP API (``/write``, ``/query``, ``/ping``).

The v1 API is served by InfluxDB 1.x, by 2.x (v1 compatibility; token auth) and by 3 Core,
so one small client serves every generation; Debian 12 ships only 1.6.7.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


class InfluxError(RuntimeError):
    """A write or query failed. ``retryable`` says whether trying later can help."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class InfluxConfig:
    url: str
    database: str
    username: str = ""
    password: str = ""
    token: str = ""
    timeout_s: float = 10.0


class InfluxClient:
    def __init__(self, cfg: InfluxConfig) -> None:
        self.cfg = cfg
        self._http = requests.Session()
        if cfg.token:
            self._http.headers["Authorization"] = f"Token {cfg.token}"
        self._auth_params: dict[str, str] = {}
        if cfg.username:
            self._auth_params = {"u": cfg.username, "p": cfg.password}

    def close(self) -> None:
        self._http.close()

    def ping(self) -> bool:
        try:
            r = self._http.get(self.cfg.url + "/ping", timeout=self.cfg.timeout_s)
        except requests.RequestException:
            return False
        return r.status_code == 204

    def ensure_database(self) -> None:
        """CREATE DATABASE is idempotent on 1.x; 2.x/3.x map databases to buckets."""
        q = f'CREATE DATABASE "{_ident(self.cfg.database)}"'
        self._post_query(q, db=None)

    def write(self, body: bytes, precision: str = "ms") -> None:
        params = {"db": self.cfg.database, "precision": precision, **self._auth_params}
        try:
            r = self._http.post(
                self.cfg.url + "/write", params=params, data=body, timeout=self.cfg.timeout_s,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
        except requests.RequestException as exc:
            raise InfluxError(f"InfluxDB unreachable at {self.cfg.url}: {exc}") from exc
        if r.status_code == 204:
            return
        raise _error_from(r)

    def query(self, q: str, *, epoch: str = "ms") -> list[dict[str, Any]]:
        """Run InfluxQL, return the list of series of the first statement ([] when empty)."""
        params = {"db": self.cfg.database, "q": q, "epoch": epoch, **self._auth_params}
        try:
            r = self._http.get(self.cfg.url + "/query", params=params,
                               timeout=self.cfg.timeout_s)
        except requests.RequestException as exc:
            raise InfluxError(f"InfluxDB unreachable at {self.cfg.url}: {exc}") from exc
        if r.status_code != 200:
            raise _error_from(r)
        results = r.json().get("results", [])
        if not results:
            return []
        first = results[0]
        if "error" in first:
            raise InfluxError(f"query failed: {first['error']}", retryable=False)
        series: list[dict[str, Any]] = first.get("series", [])
        return series

    def _post_query(self, q: str, db: str | None) -> None:
        params = {"q": q, **self._auth_params}
        if db:
            params["db"] = db
        try:
            r = self._http.post(self.cfg.url + "/query", params=params,
                                timeout=self.cfg.timeout_s)
        except requests.RequestException as exc:
            raise InfluxError(f"InfluxDB unreachable at {self.cfg.url}: {exc}") from exc
        if r.status_code != 200:
            raise _error_from(r)


def rows(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten query series into dicts (tags merged into each row)."""
    out: list[dict[str, Any]] = []
    for s in series:
        cols = s.get("columns", [])
        tags = s.get("tags", {}) or {}
        for values in s.get("values", []):
            row = dict(zip(cols, values, strict=False))
            row.update(tags)
            out.append(row)
    return out


def _ident(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def quote_string(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _error_from(r: requests.Response) -> InfluxError:
    status = r.status_code
    text = r.text[:300]
    retry_after: float | None = None
    if "Retry-After" in r.headers:
        try:
            retry_after = float(r.headers["Retry-After"])
        except ValueError:
            retry_after = None
    # 4xx other than 408/429 will fail again unchanged: the batch itself is the problem.
    retryable = status >= 500 or status in (408, 429)
    return InfluxError(f"InfluxDB answered {status}: {text}", status=status,
                       retryable=retryable, retry_after_s=retry_after)
