"""A QoS 1 publisher that costs (almost) no CPU while it runs: every PUBLISH packet is encoded
before the clock starts, then written in large chunks while a reader counts the PUBACKs.

A Python paho publisher tops out near 6,700 QoS 1 messages/s here, below what the broker
and the hub can take; this one is limited by the broker. MQTT 3.1.1, because a v3 broker
acknowledges incoming QoS 1 at once with no receive-maximum to honour; the window below
keeps packet ids unique among unacknowledged messages.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Sequence

WINDOW = 20_000  # unacknowledged messages at most (< 65,535 packet ids)
CHUNK = 500  # messages per write


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id: str) -> bytes:
    cid = client_id.encode()
    var = b"\x00\x04MQTT\x04\x02\x00\x3c"  # v3.1.1, clean session, keepalive 60 s
    body = var + struct.pack("!H", len(cid)) + cid
    return b"\x10" + _remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + struct.pack("!H", packet_id) + payload
    return b"\x32" + _remaining_length(len(body)) + body  # PUBLISH, QoS 1


def encode_all(messages: Sequence[tuple[str, bytes]]) -> list[bytes]:
    """Chunks of encoded PUBLISH packets, CHUNK messages each, ids 1..65535 cycling."""
    chunks: list[bytes] = []
    for start in range(0, len(messages), CHUNK):
        part = messages[start:start + CHUNK]
        chunks.append(b"".join(publish_packet(t, p, (start + i) % 65535 + 1)
                               for i, (t, p) in enumerate(part)))
    return chunks


class RawPublisher:
    """One connection; ``run`` sends the pre-encoded chunks and returns once all are acked."""

    def __init__(self, port: int, client_id: str, chunks: list[bytes], total: int,
                 host: str = "127.0.0.1") -> None:
        self.total = total
        self._chunks = chunks
        self._acked = 0
        self._cond = threading.Condition()
        self._sock = socket.create_connection((host, port), timeout=30)
        self._sock.sendall(connect_packet(client_id))
        connack = self._recv_exact(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"broker refused the publisher: {connack!r}")
        self.seconds = 0.0

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            got = self._sock.recv(n - len(buf))
            if not got:
                raise ConnectionError("broker closed the connection")
            buf += got
        return buf

    def _reader(self) -> None:
        pending = 0  # bytes of a PUBACK split across reads
        while self._acked < self.total:
            data = self._sock.recv(1 << 16)
            if not data:
                return
            # Only PUBACKs (4 bytes each: 0x40 0x02 id id) come back on this connection.
            n, pending = divmod(pending + len(data), 4)
            with self._cond:
                self._acked += n
                self._cond.notify_all()

    def run(self, timeout: float = 600.0) -> float:
        reader = threading.Thread(target=self._reader, name="bench.rawpub.acks", daemon=True)
        reader.start()
        t0 = time.monotonic()
        deadline = t0 + timeout
        sent = 0
        for chunk_i, chunk in enumerate(self._chunks):
            n = min(CHUNK, self.total - chunk_i * CHUNK)
            with self._cond:
                while sent + n - self._acked > WINDOW:
                    if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                        raise TimeoutError("publisher window stuck")
            self._sock.sendall(chunk)
            sent += n
        with self._cond:
            while self._acked < self.total:
                if not self._cond.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"only {self._acked} of {self.total} PUBACKed")
        self.seconds = time.monotonic() - t0
        self._sock.sendall(b"\xe0\x00")  # DISCONNECT
        self._sock.close()
        reader.join(5)
        return self.seconds
