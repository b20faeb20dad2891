"""The fault proxy and the InfluxDB front over real loopback sockets, against tiny servers."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from bench.faultinflux import FaultInflux, HttpFault
from bench.faultproxy import Fault, FaultProxy
from hub.influx import InfluxClient, InfluxConfig, InfluxError


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    p = FaultProxy(server.server_address[1], seed=3).start()
    try:
        yield p
    finally:
        for s in _OPEN:
            s.close()
        _OPEN.clear()
        p.stop()
        server.shutdown()
        server.server_close()


_OPEN: list[socket.socket] = []


def _connect(p: FaultProxy) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", p.port), timeout=2)
    s.settimeout(2)
    _OPEN.append(s)  # closed by the fixture
    return s


def _roundtrip(s: socket.socket, data: bytes) -> bytes:
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_pass_then_reset_kills_open_and_new_connections(proxy: FaultProxy) -> None:
    s = _connect(proxy)
    assert _roundtrip(s, b"hello") == b"hello"
    proxy.reset()
    with pytest.raises((ConnectionError, OSError)):
        s.sendall(b"x")
        if not s.recv(10):
            raise ConnectionResetError("closed")
    s2 = _connect(proxy)
    with pytest.raises((ConnectionError, OSError)):
        s2.sendall(b"x")
        if not s2.recv(10):
            raise ConnectionResetError("closed")
    proxy.pass_()
    assert _roundtrip(_connect(proxy), b"back") == b"back"


def test_blackhole_accepts_and_says_nothing_then_resets(proxy: FaultProxy) -> None:
    s = _connect(proxy)
    proxy.blackhole()
    s.sendall(b"anyone?")
    s.settimeout(0.5)
    with pytest.raises(TimeoutError):
        s.recv(10)
    fresh = _connect(proxy)  # a new connection is accepted too
    fresh.settimeout(0.3)
    fresh.sendall(b"hi")
    with pytest.raises(TimeoutError):
        fresh.recv(10)
    proxy.pass_()  # the swallowed stream cannot resume: it is reset
    s.settimeout(2)
    with pytest.raises((ConnectionError, OSError)):
        if not s.recv(10):
            raise ConnectionResetError("closed")


def test_slow_link_adds_latency_and_caps_bandwidth(proxy: FaultProxy) -> None:
    proxy.set(Fault.slow(0.2, 0.0, 8192))
    s = _connect(proxy)
    t0 = time.monotonic()
    assert _roundtrip(s, b"x") == b"x"
    rtt = time.monotonic() - t0
    assert 0.35 <= rtt <= 1.5  # 0.2 s each way, generous margin for a busy machine
    t0 = time.monotonic()
    assert _roundtrip(s, b"y" * 8192) == b"y" * 8192
    took = time.monotonic() - t0
    # 8 KiB each way at 8 KiB/s (burst 2 KiB) plus latency: ~1.9 s; never under a second.
    assert 1.0 <= took <= 5.0


def test_flap_goes_down_and_up(proxy: FaultProxy) -> None:
    proxy.set(Fault.flap((0.2, 0.3), (0.2, 0.3)))
    deadline = time.monotonic() + 5
    while proxy.stats.flaps < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.stats.flaps >= 2
    proxy.pass_()
    assert _roundtrip(_connect(proxy), b"ok") == b"ok"


class _Influx(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        type(self).bodies.append(self.rfile.read(n))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def front() -> Iterator[tuple[FaultInflux, InfluxClient, list[bytes]]]:
    _Influx.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Influx)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    f = FaultInflux(server.server_address[1]).start()
    client = InfluxClient(InfluxConfig(f.url, "db", timeout_s=1.0))
    try:
        yield f, client, _Influx.bodies
    finally:
        client.close()
        f.stop()
        server.shutdown()
        server.server_close()


def test_front_answers_like_a_troubled_influxdb(
        front: tuple[FaultInflux, InfluxClient, list[bytes]]) -> None:
    f, client, bodies = front
    client.write(b"m v=1i 1")
    assert bodies == [b"m v=1i 1"]
    f.set(HttpFault("status", code=503, retry_after_s=7))
    with pytest.raises(InfluxError) as e503:
        client.write(b"m v=2i 2")
    assert (e503.value.status, e503.value.retryable, e503.value.retry_after_s) == (503, True, 7)
    f.set(HttpFault("max_body", max_bytes=10))
    with pytest.raises(InfluxError) as e413:
        client.write(b"m v=3i 3\nm v=4i 4")
    assert (e413.value.status, e413.value.retryable) == (413, False)
    client.write(b"m v=5i 5")  # small enough
    f.set(HttpFault("poison", needles=(b"v=7i",)))
    with pytest.raises(InfluxError) as e400:
        client.write(b"m v=6i 6\nm v=7i 7\nm v=8i 8")
    assert e400.value.status == 400 and not e400.value.retryable
    assert bodies[-1] == b"m v=6i 6\nm v=8i 8"  # a partial write: the good lines landed
    f.set(HttpFault("hang"))
    with pytest.raises(InfluxError) as hung:
        client.write(b"m v=9i 9")
    assert hung.value.retryable
    f.set(HttpFault())
    client.write(b"m v=10i 10")
    assert bodies[-1] == b"m v=10i 10"
