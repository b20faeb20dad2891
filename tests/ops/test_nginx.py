"""The nginx site (deploy/hub/nginx/dcor-hub.conf), with only ports and paths changed, in
front of a live hub: HTTP goes to HTTPS, TLS works, the request id is nginx's own on both
sides, and server-sent events pass through as they happen."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.localservices import free_port, wait_until
from hub.registry.db import open_registry
from hub.settings import load_settings
from hub.web import close_app, create_app, make_web_server
from provisioning import pki
from tests.ops.installkit import REPO

SITE = REPO / "deploy" / "hub" / "nginx" / "dcor-hub.conf"
pytestmark = pytest.mark.skipif(shutil.which("nginx") is None and not os.path.exists(
    "/usr/sbin/nginx"), reason="nginx not installed (scripts/bootstrap.sh installs it)")


@dataclass
class Front:
    http_port: int
    https_port: int
    ca: Path
    folder: Path

    def tls(self) -> http.client.HTTPSConnection:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        return http.client.HTTPSConnection("127.0.0.1", self.https_port, context=ctx,
                                           timeout=5)


def render_site(hub_port: int, http_port: int, https_port: int, cert: Path, key: Path,
                logs: Path) -> str:
    text = SITE.read_text()
    text = re.sub(r"^\s*listen \[::\].*\n", "", text, flags=re.MULTILINE)  # no IPv6 here
    repl = {"server 127.0.0.1:8080;": f"server 127.0.0.1:{hub_port};",
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
            "/etc/dcor-hub/web-tls/fullchain.pem": str(cert),
            "/etc/dcor-hub/web-tls/privkey.pem": str(key),
            "/var/log/nginx/": f"{logs}/"}
    for old, new in repl.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture
def hub_port(tmp_path) -> Iterator[int]:
    settings = load_settings(env={}, overrides={
        "data_dir": tmp_path / "hub", "web_port": 0, "secret_key": "k" * 64,
        "influx_url": f"http://127.0.0.1:{free_port()}", "influx_timeout_s": 0.5})
    settings.data_dir.mkdir()
    registry = open_registry(settings.resolved_database_url())
    app = create_app(settings, registry=registry, test_config={
        "DCOR_SSE_HEARTBEAT_S": 0.2, "DCOR_SSE_MAX_AGE_S": 20.0})
    server = make_web_server(settings, app)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         name="dcor.test:web", daemon=True)
    t.start()
    yield server.server_port
    server.shutdown()
    server.server_close()
    close_app(app)
    registry.close()


@pytest.fixture
def front(tmp_path, hub_port) -> Iterator[Front]:
    ca_key, ca = pki.make_ca()
    key, cert = pki.make_server_cert(ca_key, ca, ["127.0.0.1", "hub.dcor.example"])
    d = tmp_path / "nginx"
    d.mkdir()
    ca_path = pki.write_file(d / "ca.crt", pki.cert_pem(ca), 0o644)
    cert_path = pki.write_file(d / "fullchain.pem", pki.cert_pem(cert), 0o644)
    key_path = pki.write_file(d / "privkey.pem", pki.private_pem(key), 0o600)
    http_port, https_port = free_port(), free_port()
    (d / "site.conf").write_text(render_site(hub_port, http_port, https_port, cert_path,
                                             key_path, d))
    temps = "\n".join(f"  {k}_temp_path {d}/{k};" for k in
                      ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (d / "nginx.conf").write_text(f"""daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 64; }}
http {{
{temps}
  access_log {d}/access.log;
  include {d}/site.conf;
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    base = [nginx, "-p", str(d), "-e", str(d / "error.log"), "-c", str(d / "nginx.conf")]
    check = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def listening() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=0.2).close()
            return True
        except OSError:
            return False

    try:
        wait_until(listening, timeout=10, message="nginx listening")
        yield Front(http_port, https_port, ca_path, d)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_plain_http_is_sent_to_https(front):
    conn = http.client.HTTPConnection("127.0.0.1", front.http_port, timeout=5)
    conn.request("GET", "/alerts", headers={"Host": "hub.dcor.example"})
    r = conn.getresponse()
    assert r.status == 301 and r.getheader("Location") == "https://hub.dcor.example/alerts"
    conn.close()


def test_tls_reaches_the_hub_with_nginx_request_id(front):
    conn = front.tls()
    conn.request("GET", "/api/v1/openapi.json")
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200 and b'"openapi"' in body
    rid = r.getheader("X-Request-ID")
    assert rid and re.fullmatch(r"[0-9a-f]{32}", rid)
    assert r.getheader("Server") == "nginx"  # server_tokens off: no version
    assert conn.sock is not None and conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.close()
    # The same id in nginx's access log: the two logs join on it.
    wait_until(lambda: f"rid={rid}" in (front.folder / "dcor-hub.access.log").read_text(),
               timeout=5, message="access log line")


def test_server_sent_events_are_not_buffered(front):
    conn = front.tls()
    conn.request("GET", "/api/v1/alerts/stream", headers={"Accept": "text/event-stream"})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Content-Type", "").startswith("text/event-stream")
    started = time.monotonic()
    seen = b""
    while seen.count(b": heartbeat") < 3:
        chunk = r.read1(4096)
        assert chunk, "stream ended"
        seen += chunk
    # Heartbeats come every 0.2 s; a buffering proxy would hold them for 20 s (the stream's
    # end) or until its buffer fills.
    assert time.monotonic() - started < 5.0
    assert seen.startswith(b"retry:")
    conn.close()
