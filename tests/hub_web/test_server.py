"""``run_web``: a real threaded server on a free loopback port, stopped by its event."""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
from pathlib import Path

import pytest

from hub.localservices.process import free_port
from hub.settings import load_settings
from hub.web import run_web


def _get(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_run_web_serves_and_stops(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(env={}, overrides={
        "data_dir": tmp_path / "hub", "web_host": "127.0.0.1", "web_port": 0,
        "influx_url": f"http://127.0.0.1:{free_port()}", "influx_timeout_s": 2.0,
    })
    urls: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    server = threading.Thread(target=run_web, args=(settings,),
                              kwargs={"on_ready": urls.put, "stop": stop}, name="test-web")
    server.start()
    try:
        url = urls.get(timeout=10)
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")
        status, body = _get(url, "/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok", "registry": True})
        status, body = _get(url, "/?lang=en")
        assert status == 200 and b"No devices enrolled yet." in body
        assert (tmp_path / "hub" / "registry.sqlite").is_file()  # default SQLite registry
    finally:
        stop.set()
        started = time.monotonic()
        server.join(timeout=10)
    assert not server.is_alive()
    assert time.monotonic() - started < 3
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the CLI decides what is printed
