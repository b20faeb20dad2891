"""A simulated fleet: N boxes in one process speaking the exact wire contract.

    python -m bench.fleet --devices 2000 --port 1883 [--duration 300]
    dcor-sim --devices 2000 --port 1883

Each box (``bench.simdevice``) has the real SQLite outbox and real payloads (health every
``--health-interval``, detections per camera every ``--detections-interval``), its own paho
client, client id and last will. One thread drives every connection through paho's
external-loop API (epoll), so thousands of boxes cost one thread, not two each. Boxes
connect at ``--connect-rate`` per second, first reports spread over one interval, and a
dropped connection comes back after a capped, jittered backoff. The devices must be
enrolled in the hub's registry (``--enroll-db URL`` does it). On exit (SIGINT/SIGTERM or
``--duration``) every box says offline and one JSON line of counters is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import random
import selectors
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from bench import synth
from bench.common import emit, note
from bench.simdevice import SimConfig, SimDevice, SimStats
from dcor_wire.backoff import Backoff
from edge_agent.remoteconf.keys import load_hub_key

TURN_S = 0.05  # longest wait in the loop: sending latency of freshly produced rows
MISC_EVERY_S = 1.0  # keepalive bookkeeping and ack-timeout checks
OPEN_THREADS = 8


@dataclass
class _Link:
    index: int
    device: SimDevice
    backoff: Backoff
    sock: Any = None


@dataclass
class SimFleet:
    ids: list[str]
    cfg: SimConfig
    outbox_dir: Path
    connect_rate: float = 200.0
    _links: list[_Link] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _sel: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    _timers: list[tuple[float, int, int, str]] = field(default_factory=list)
    _producing: bool = True

    def start(self) -> SimFleet:
        # Creating an outbox mostly waits for the disk (schema, WAL): a few side by side
        # halve the start of a few hundred boxes.
        with ThreadPoolExecutor(OPEN_THREADS, thread_name_prefix="bench.fleet.open") as pool:
            devices = list(pool.map(
                lambda d: SimDevice(d, self.outbox_dir / f"{d}.sqlite", self.cfg), self.ids))
        self._links = [_Link(i, device, Backoff(0.5, 10.0))
                       for i, device in enumerate(devices)]
        rng = random.Random(7)
        now = time.monotonic()
        for i in range(len(self._links)):
            # First reports spread over one interval, as boxes booted at different times.
            heapq.heappush(self._timers, (now + rng.uniform(0, self.cfg.health_interval_s),
                                          i, 0, "health"))
            heapq.heappush(self._timers, (now + rng.uniform(0, self.cfg.detections_interval_s),
                                          i, 1, "detections"))
            heapq.heappush(self._timers, (now + i / self.connect_rate, i, 2, "connect"))
        self._thread = threading.Thread(target=self._run, name="bench.fleet", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Every connected box says offline (retained), then disconnects."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout + 5)
        for link in self._links:
            link.device.close()

    def pause(self) -> None:
        """Stop producing; connections stay up so the outboxes drain."""
        self._producing = False

    def connected(self) -> int:
        return sum(1 for link in self._links if link.device.connected)

    def stats(self) -> dict[str, Any]:
        total = SimStats()
        for link in self._links:
            for k, v in asdict(link.device.stats).items():
                setattr(total, k, getattr(total, k) + v)
        return {"devices": len(self._links), "connected": self.connected(), **asdict(total),
                "outbox_rows": sum(link.device.outbox_depth() for link in self._links)}

    def last_seqs(self) -> dict[str, int]:
        return {link.device.device_id: link.device.last_seq() for link in self._links}

    # --- the loop (one thread owns every client) ------------------------------------------

    def _run(self) -> None:
        next_misc = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            self._fire_timers(now)
            if now >= next_misc:
                next_misc = now + MISC_EVERY_S
                self._misc(now)
            for link in self._links:
                if link.sock is not None:
                    link.device.pump(now)
                    client = link.device.client
                    if client is not None and client.want_write():
                        self._io(link, client.loop_write)
            wait = min(TURN_S, max(0.0, (self._timers[0][0] - time.monotonic())
                                   if self._timers else TURN_S))
            for key, _ in self._sel.select(wait):
                link = key.data
                if link.device.client is not None:
                    self._io(link, link.device.client.loop_read)
        self._shutdown()

    def _fire_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, i, order, what = heapq.heappop(self._timers)
            link = self._links[i]
            if what == "connect":
                self._connect(link, i)
                continue
            if what == "health":
                if self._producing:
                    link.device.produce_health()
                period = self.cfg.health_interval_s
            else:
                if self._producing:
                    link.device.produce_detections(int(self.cfg.detections_interval_s * 1000))
                period = self.cfg.detections_interval_s
            heapq.heappush(self._timers, (now + period, i, order, what))

    def _connect(self, link: _Link, i: int) -> None:
        client = link.device.new_client()
        try:
            client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s,
                           clean_start=False, properties=link.device.connect_properties())
        except OSError:
            heapq.heappush(self._timers, (time.monotonic() + link.backoff.next_delay(), i, 2,
                                          "connect"))
            return
        link.sock = client.socket()
        self._sel.register(link.sock, selectors.EVENT_READ, link)

    def _io(self, link: _Link, op: Any) -> None:
        try:
            rc = op()
        except (OSError, ValueError):
            rc = mqtt.MQTT_ERR_CONN_LOST
        if rc != mqtt.MQTT_ERR_SUCCESS:
            self._drop(link)

    def _drop(self, link: _Link) -> None:
        if link.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(link.sock)
            link.sock = None
        link.device.connected = False
        heapq.heappush(self._timers, (time.monotonic() + link.backoff.next_delay(), link.index,
                                      2, "connect"))

    def _misc(self, now: float) -> None:
        for link in self._links:
            client = link.device.client
            if link.sock is None or client is None:
                continue
            if link.device.connected:
                link.backoff.reset()
            link.device.expire(now)
            self._io(link, client.loop_misc)

    def _shutdown(self) -> None:
        for link in self._links:
            if link.sock is not None and link.device.client is not None:
                link.device.say_offline()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(
                link.sock is not None and link.device.client is not None
                and link.device.client.want_write() for link in self._links):
            for link in self._links:
                if link.sock is not None and link.device.client is not None:
                    self._io(link, link.device.client.loop_write)
            for key, _ in self._sel.select(0.05):
                if key.data.device.client is not None:
                    self._io(key.data, key.data.device.client.loop_read)
        for link in self._links:
            if link.sock is not None and link.device.client is not None:
                try:
                    link.device.client.disconnect()
                    link.device.client.loop_write()
                except (OSError, ValueError):
                    pass
        self._sel.close()


def enroll(url: str, ids: list[str]) -> None:
    from bench.hubkit import enroll_bulk
    from hub.registry.db import open_registry

    registry = open_registry(url)
    try:
        enroll_bulk(registry, ids)
    finally:
        registry.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dcor-sim", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--prefix", default="sim", help="device ids <prefix>-00001...")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--health-interval", type=float, default=10.0)
    p.add_argument("--detections-interval", type=float, default=10.0)
    p.add_argument("--cameras", type=int, default=1)
    p.add_argument("--connect-rate", type=float, default=200.0, help="connections per second")
    p.add_argument("--duration", type=float, default=0.0, help="seconds; 0 = until signalled")
    p.add_argument("--outbox-dir", default=None, help="default: a temporary folder")
    p.add_argument("--fsync", action="store_true", help="outbox synchronous=FULL as on a box")
    p.add_argument("--enroll-db", default=None, help="enroll the devices in this registry")
    p.add_argument("--hub-key", type=Path, default=None,
                   help="the hub's signing public key: take pushed configurations (check the "
                        "signature, report applied or rejected); without it they are ignored")
    a = p.parse_args(argv)
    ids = synth.device_ids(a.devices, a.prefix)
    if a.enroll_db:
        enroll(a.enroll_db, ids)
    cfg = SimConfig(host=a.host, port=a.port, health_interval_s=a.health_interval,
                    detections_interval_s=a.detections_interval, cameras=a.cameras,
                    fsync=a.fsync, hub_key=load_hub_key(a.hub_key))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="dcor-sim-") as tmp:
        folder = Path(a.outbox_dir) if a.outbox_dir else Path(tmp)
        fleet = SimFleet(ids, cfg, folder, connect_rate=a.connect_rate).start()
        note(f"simulating {len(ids)} devices against {a.host}:{a.port}")
        stop.wait(a.duration or None)
        fleet.stop()
        emit({"bench": "fleet", **fleet.stats()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
