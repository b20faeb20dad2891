"""A webhook receiver on loopback for tests: records every request, checks the signature,
and can fail the first attempt of each delivery (``fail_first``)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hub.alerts.notify import verify_signature

SECRET = b"webhook-secret-for-tests"


@dataclass(frozen=True)
class Received:
    delivery: str
    body: dict[str, Any]
    signed: bool
    status: int


class _Handler(BaseHTTPRequestHandler):
    server: WebhookReceiver

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        srv = self.server
        delivery = self.headers.get("X-Dcor-Delivery", "")
        signed = verify_signature(srv.secret, self.headers.get("X-Dcor-Timestamp", ""), raw,
                                  self.headers.get("X-Dcor-Signature", ""))
        with srv.lock:
            first = delivery not in srv.seen
            srv.seen.add(delivery)
            status = 500 if srv.fail_first and first else 200
            srv.received.append(Received(delivery, json.loads(raw), signed, status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class WebhookReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fail_first: bool = False, secret: bytes = SECRET) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fail_first = fail_first
        self.secret = secret
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.received: list[Received] = []
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="test.webhook", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    def accepted(self) -> list[Received]:
        """Requests answered 2xx, in order."""
        with self.lock:
            return [r for r in self.received if r.status == 200]

    def attempts(self) -> dict[str, int]:
        with self.lock:
            out: dict[str, int] = {}
            for r in self.received:
                out[r.delivery] = out.get(r.delivery, 0) + 1
            return out
