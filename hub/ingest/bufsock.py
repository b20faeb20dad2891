"""A buffered socket for paho's external-loop API: many packets per system call.

paho reads every packet with several ``recv`` calls (one byte of header, the length bytes,
then the body) and writes every packet, each PUBACK included, with its own ``send``. At ten
thousand messages a second that is tens of thousands of system calls, each of which gives up
the GIL to whichever thread waits for it. Handed this object in place of its socket, paho's
``recv`` is served from one large read and its ``send`` lands in a buffer that the owning
loop flushes once per turn. ``pending()`` tells paho (and the loop) that bytes are waiting
here although the kernel socket has none, exactly as paho already handles TLS sockets.

Only the one thread that runs the loop may use it.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

READ_SIZE = 256 * 1024


class BufferedSocket:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._in = b""
        self._pos = 0
        self._out = bytearray()

    # --- what paho calls ------------------------------------------------------------------

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes; raises BlockingIOError (or the TLS want-read) when the
        kernel has nothing either, b"" when the peer closed, like a socket."""
        if self._pos >= len(self._in):
            data = self._sock.recv(READ_SIZE)
            if not data:
                return b""
            self._in, self._pos = data, 0
        end = self._pos + bufsize
        chunk = self._in[self._pos:end]
        self._pos = end
        return chunk

    def send(self, data: bytes | bytearray | memoryview) -> int:
        self._out += data
        return len(data)

    def pending(self) -> int:
        """Bytes readable without touching the kernel (ours, plus TLS's own buffer)."""
        extra = self._sock.pending() if isinstance(self._sock, ssl.SSLSocket) else 0
        return len(self._in) - self._pos + extra

    # --- what the loop calls --------------------------------------------------------------

    def wants_flush(self) -> bool:
        return bool(self._out)

    def flush(self) -> None:
        """Write what the kernel takes now; the rest waits for the socket to be writable.

        Raises OSError when the connection is gone."""
        while self._out:
            try:
                sent = self._sock.send(self._out)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            del self._out[:sent]

    @property
    def raw(self) -> socket.socket:
        return self._sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        # setblocking, getpeername, shutdown...: whatever else paho asks of a socket.
        return getattr(self._sock, name)
