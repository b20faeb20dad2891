"""A fault-injecting TCP proxy on loopback: the village uplink between an agent and the broker.

One asyncio loop in a named daemon thread (``dcor.faultproxy:<name>``) serves every
connection; the test or benchmark changes the mode from its own thread at any time:

pass        bytes flow both ways untouched
reset       every open connection is aborted with a TCP RST, new ones are reset at once
blackhole   half-open: connections stay open (new ones are accepted) but nothing is forwarded
            in either direction; when the mode changes, they are reset (the data they
            swallowed cannot be replayed without corrupting the stream)
slow        latency with jitter (order kept) and a bandwidth cap per connection and direction
flap        random up (pass or slow) and down (reset) periods, drawn from a seeded generator

The shaping arithmetic (token bucket, delivery times) lives in ``bench.faultshape`` and is
table-tested; this module is only sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from bench.faultshape import DeliveryClock, TokenBucket

Kind = Literal["pass", "reset", "blackhole", "slow", "flap"]
_CHUNK = 4096
_SLOW_CHUNK = 512  # a capped link moves small pieces so pacing stays smooth
_SOCK_BUF = 64 * 1024  # keep kernel buffering near what a modem holds, not megabytes


@dataclass(frozen=True)
class Fault:
    """What the link does now. Times in seconds, ``bytes_per_s`` 0 means no cap."""

    kind: Kind = "pass"
    latency_s: float = 0.0
    jitter_s: float = 0.0
    bytes_per_s: float = 0.0
    up_s: tuple[float, float] = (3.0, 12.0)  # flap: up period drawn uniformly in this range
    down_s: tuple[float, float] = (1.0, 6.0)  # flap: down period

    @staticmethod
    def slow(latency_s: float, jitter_s: float = 0.0, bytes_per_s: float = 0.0) -> Fault:
        return Fault("slow", latency_s, jitter_s, bytes_per_s)

    @staticmethod
    def flap(up_s: tuple[float, float], down_s: tuple[float, float]) -> Fault:
        return Fault("flap", up_s=up_s, down_s=down_s)


@dataclass
class ProxyStats:
    accepted: int = 0
    resets: int = 0
    bytes_up: int = 0  # client -> target
    bytes_down: int = 0
    flaps: int = 0


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    blackholed: bool = False


class FaultProxy:
    """``FaultProxy(target_port).start()``; point clients at ``proxy.port``."""

    def __init__(self, target_port: int, *, name: str = "proxy", listen_port: int = 0,
                 target_host: str = "127.0.0.1", seed: int = 0) -> None:
        self.name = name
        self.target = (target_host, target_port)
        self._listen_port = listen_port
        self._rand = random.Random(seed)
        self._fault = Fault()
        self._link_up = True  # flap's current phase
        self.stats = ProxyStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[_Conn] = set()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._flap_task: asyncio.Task[None] | None = None
        self.port = 0

    # --- control (any thread) ---------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name=f"dcor.faultproxy:{self.name}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"fault proxy {self.name} did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    @property
    def fault(self) -> Fault:
        return self._fault

    def set(self, fault: Fault) -> None:
        """Switch mode; returns once the loop has applied it."""
        done = threading.Event()

        def apply() -> None:
            self._apply(fault)
            done.set()

        assert self._loop is not None, "start() first"
        self._loop.call_soon_threadsafe(apply)
        done.wait(5)

    def pass_(self) -> None:
        self.set(Fault())

    def reset(self) -> None:
        self.set(Fault("reset"))

    def blackhole(self) -> None:
        self.set(Fault("blackhole"))

    # --- loop side ------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCK_BUF)
        sock.bind(("127.0.0.1", self._listen_port))
        self.port = sock.getsockname()[1]
        self._server = loop.run_until_complete(
            asyncio.start_server(self._accept, sock=sock, limit=_CHUNK * 4))
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            for c in list(self._conns):
                self._abort(c)
            self._server.close()
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def _apply(self, fault: Fault) -> None:
        self._fault = fault
        if self._flap_task is not None:
            self._flap_task.cancel()
            self._flap_task = None
        self._link_up = True
        if fault.kind == "flap":
            self._flap_task = asyncio.ensure_future(self._flap(fault))
        self._enforce()

    def _effective(self) -> Fault:
        """The mode in force now (flap resolves to reset, or to pass / slow)."""
        f = self._fault
        if f.kind != "flap":
            return f
        if not self._link_up:
            return Fault("reset")
        return Fault("slow", f.latency_s, f.jitter_s, f.bytes_per_s) if (
            f.latency_s or f.bytes_per_s) else Fault()

    def _enforce(self) -> None:
        mode = self._effective().kind
        for c in list(self._conns):
            if mode == "reset" or (mode != "blackhole" and c.blackholed):
                self._abort(c)  # a blackholed stream lost bytes: it cannot resume
            elif mode == "blackhole":
                c.blackholed = True

    async def _flap(self, fault: Fault) -> None:
        while True:
            await asyncio.sleep(self._rand.uniform(*fault.up_s))
            self._link_up = False
            self.stats.flaps += 1
            self._enforce()
            await asyncio.sleep(self._rand.uniform(*fault.down_s))
            self._link_up = True

    def _abort(self, c: _Conn) -> None:
        self._conns.discard(c)
        self.stats.resets += 1
        for w in (c.client, c.upstream):
            if w is None:
                continue
            sock = w.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            w.transport.abort()
        for t in c.tasks:
            t.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        conn = _Conn(writer)
        self._conns.add(conn)
        mode = self._effective().kind
        if mode == "reset":
            self._abort(conn)
            return
        if mode == "blackhole":
            conn.blackholed = True
            return  # accepted, never answered; the reader is simply not read
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target, limit=_CHUNK * 4)
        except OSError:
            self._abort(conn)
            return
        conn.upstream = up_writer
        if conn not in self._conns:  # reset while we were connecting
            self._abort(conn)
            return
        for sock_owner in (writer, up_writer):
            sock = sock_owner.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCK_BUF)
        conn.tasks = [
            asyncio.ensure_future(self._pump(conn, reader, up_writer, up=True)),
            asyncio.ensure_future(self._pump(conn, up_reader, writer, up=False)),
        ]

    async def _pump(self, conn: _Conn, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    up: bool) -> None:
        bucket = TokenBucket(0.0, time.monotonic())
        clock = DeliveryClock()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        writer_task = asyncio.ensure_future(self._deliver(conn, queue, dst, up))
        conn.tasks.append(writer_task)
        try:
            while True:
                f = self._effective()
                limit = _SLOW_CHUNK if f.kind == "slow" and f.bytes_per_s else _CHUNK
                data = await src.read(limit)
                if not data:
                    break
                f = self._effective()
                if conn.blackholed or f.kind == "blackhole":
                    continue  # swallowed: a half-open link
                now = time.monotonic()
                due = now
                if f.kind == "slow":
                    bucket.rate = f.bytes_per_s
                    wait = bucket.take(len(data), now)
                    if wait > 0:
                        await asyncio.sleep(wait)
                        now = time.monotonic()
                    jitter = self._rand.uniform(-f.jitter_s, f.jitter_s) if f.jitter_s else 0.0
                    due = clock.due(now, f.latency_s + jitter)
                await queue.put((due, data))
        except (ConnectionError, OSError):
            pass
        finally:
            await queue.put(None)

    async def _deliver(self, conn: _Conn, queue: asyncio.Queue[tuple[float, bytes] | None],
                       dst: asyncio.StreamWriter, up: bool) -> None:
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                due, data = item
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if conn.blackholed:
                    continue
                dst.write(data)
                await dst.drain()
                if up:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
        except (ConnectionError, OSError):
            pass
        finally:
            # One side closed: close the other so the client sees the link end.
            if conn in self._conns and not conn.blackholed:
                self._conns.discard(conn)
                for w in (conn.client, conn.upstream):
                    if w is not None:
                        w.close()

