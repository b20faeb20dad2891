"""An HTTP front for influxd that answers ``/write`` the way troubled servers do.

The hub talks to this front instead of influxd; ``/query`` and ``/ping`` always pass through.
Modes for ``/write``:

pass        forward the body, return influxd's answer
status      answer ``code`` (500, 503 with ``Retry-After``, 429...) without writing anything
hang        read the request, never answer (until the mode changes; then the socket closes)
poison      lines containing every one of ``needles`` are refused the way InfluxDB 1.x
            refuses a bad line in a batch: the other lines are written, the answer is 400
            ``partial write``
max_body    bodies over ``max_bytes`` get 413 (InfluxDB's ``max-body-size``)
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Kind = Literal["pass", "status", "hang", "poison", "max_body"]


@dataclass(frozen=True)
class HttpFault:
    kind: Kind = "pass"
    code: int = 500
    retry_after_s: int | None = None
    needles: tuple[bytes, ...] = ()
    max_bytes: int = 0


@dataclass
class HttpStats:
    writes: int = 0
    faulted: int = 0
    refused_lines: int = 0


class FaultInflux:
    def __init__(self, target_port: int, *, name: str = "influx-front") -> None:
        self.name = name
        self.target_port = target_port
        self.fault = HttpFault()
        self.stats = HttpStats()
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultInflux:
        front = self

        class Handler(_Handler):
            owner = front

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"dcor.faultinflux:{self.name}", daemon=True)
        self._thread.start()
        return self

    def set(self, fault: HttpFault) -> None:
        with self._changed:
            self.fault = fault
            self._changed.notify_all()

    def stop(self) -> None:
        self.set(HttpFault())
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_change(self, current: HttpFault, timeout: float) -> None:
        with self._changed:
            if self.fault is current:
                self._changed.wait(timeout)

    def forward(self, method: str, path: str, body: bytes,
                headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.target_port, timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            r = conn.getresponse()
            return r.status, {k: v for k, v in r.getheaders()
                              if k.lower() in ("content-type", "retry-after")}, r.read()
        except OSError:
            return 502, {}, b'{"error":"influxd unreachable behind the fault front"}'
        finally:
            conn.close()


class _Handler(BaseHTTPRequestHandler):
    owner: FaultInflux
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._pass(b"")

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if not self.path.startswith("/write"):
            self._pass(body)
            return
        owner = self.owner
        owner.stats.writes += 1
        f = owner.fault
        if f.kind == "pass":
            self._pass(body)
        elif f.kind == "status":
            owner.stats.faulted += 1
            extra = {"Retry-After": str(f.retry_after_s)} if f.retry_after_s is not None else {}
            self._answer(f.code, b'{"error":"injected fault"}', extra)
        elif f.kind == "hang":
            owner.stats.faulted += 1
            deadline = time.monotonic() + 600
            while owner.fault is f and time.monotonic() < deadline:
                owner.wait_change(f, 0.5)
            self.close_connection = True  # no answer at all: the client's timeout decides
        elif f.kind == "max_body" and len(body) > f.max_bytes:
            owner.stats.faulted += 1
            self._answer(413, b'{"error":"Request Entity Too Large"}')
        elif f.kind == "poison" and f.needles and _poisoned(body, f.needles):
            owner.stats.faulted += 1
            lines = body.split(b"\n")
            good = [ln for ln in lines if not _poisoned(ln, f.needles)]
            owner.stats.refused_lines += len(lines) - len(good)
            if good:
                self.owner.forward("POST", self.path, b"\n".join(good), self._fwd_headers())
            self._answer(400, b'{"error":"partial write: field type conflict: dropped=%d"}'
                         % (len(lines) - len(good)))
        else:
            self._pass(body)

    def _fwd_headers(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items()
                if k.lower() in ("content-type", "authorization")}

    def _pass(self, body: bytes) -> None:
        status, headers, data = self.owner.forward(self.command, self.path, body,
                                                   self._fwd_headers())
        self._answer(status, data, headers)

    def _answer(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)


def _poisoned(text: bytes, needles: tuple[bytes, ...]) -> bool:
    if b"\n" in text:
        return any(_poisoned(ln, needles) for ln in text.split(b"\n"))
    return all(n in text for n in needles)
