"""A throwaway InfluxDB 1.x ``influxd`` on free 127.0.0.1 ports (see ``hub.localservices``)."""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from pathlib import Path
from typing import Any

from hub.localservices.process import LocalServiceError, ServiceProcess, free_port


class InfluxProcess(ServiceProcess):
    """An InfluxDB 1.x ``influxd`` with HTTP and RPC on free 127.0.0.1 ports."""

    name = "influxd"
    binary_name = "influxd"

    def __init__(self, port: int | None = None, *, rpc_port: int | None = None,
                 data_dir: str | os.PathLike[str] | None = None, binary: str | None = None,
                 startup_timeout: float = 20.0, die_with_parent: bool = True) -> None:
        super().__init__(data_dir=data_dir, binary=binary, startup_timeout=startup_timeout,
                         die_with_parent=die_with_parent,
                         fixed_port=port is not None or rpc_port is not None)
        self.port = port if port is not None else free_port()
        self.rpc_port = rpc_port if rpc_port is not None else self._other_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "influxdb.conf"

    def config_text(self) -> str:
        d = self.data_dir
        # Quiet logs, no phone-home, no _internal monitor database (it writes every 10 s).
        return f"""\
reporting-enabled = false
bind-address = "127.0.0.1:{self.rpc_port}"

[meta]
  dir = "{d}/meta"
  logging-enabled = false

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  pprof-enabled = false

[continuous_queries]
  log-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""

    def _pick_ports(self) -> None:
        self.port = free_port()
        self.rpc_port = self._other_port()

    def _other_port(self) -> int:
        # Each free_port() closes its socket, so two calls may hand out the same number.
        port = free_port()
        while port == self.port:
            port = free_port()
        return port

    def _command(self, binary: str) -> list[str]:
        self.config_path.write_text(self.config_text())
        return [binary, "-config", str(self.config_path)]

    def _is_ready(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=0.5)
        try:
            conn.request("GET", "/ping")
            return conn.getresponse().status == 204
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    # --- small v1 HTTP helpers for fixtures and the demo (the hub uses hub.influx) ----------
    def query(self, q: str, db: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """POST ``/query`` (InfluxQL) and return the decoded JSON; raise on an error answer."""
        params = {"q": q, "epoch": "ms", **({"db": db} if db else {})}
        status, body = self._http("POST", "/query", urllib.parse.urlencode(params).encode(),
                                  "application/x-www-form-urlencoded", timeout)
        result: dict[str, Any] = json.loads(body) if body else {}
        errors = [r["error"] for r in result.get("results", []) if "error" in r]
        if status != 200 or "error" in result or errors:
            raise LocalServiceError(f"influxd query {q!r} failed ({status}): {body[:300]!r}")
        return result

    def write(self, lines: str | bytes, db: str, precision: str = "ms",
              timeout: float = 10.0) -> None:
        """POST line protocol to ``/write``; raise unless influxd answers 204."""
        data = lines.encode() if isinstance(lines, str) else lines
        path = "/write?" + urllib.parse.urlencode({"db": db, "precision": precision})
        status, body = self._http("POST", path, data, "text/plain; charset=utf-8", timeout)
        if status != 204:
            raise LocalServiceError(f"influxd write failed ({status}): {body[:300]!r}")

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        self.query(f'DROP DATABASE "{name}"')

    def _http(self, method: str, path: str, data: bytes, content_type: str,
              timeout: float) -> tuple[int, bytes]:
        # http.client, not requests/urllib: no *_proxy environment can reroute 127.0.0.1.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers={"Content-Type": content_type})
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise LocalServiceError(f"influxd at {self.url} unreachable: {exc}") from exc
        finally:
            conn.close()
