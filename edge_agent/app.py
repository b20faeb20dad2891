"""The agent's composition root: builds the stages, starts them in order, stops in reverse."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from typing import Any

import msgspec

from dcor_wire import payloads, topics
from edge_agent import __version__
from edge_agent.config import AgentConfig
from edge_agent.health import HealthCollector
from edge_agent.outbox import Outbox, OutboxFull
from edge_agent.telemetry import Priority
from edge_agent.uplink import Uplink

log = logging.getLogger("dcor.agent")

_KINDS: dict[str, type[msgspec.Struct]] = {
    topics.HEALTH: payloads.Health,
}


def wall_ms() -> int:
    return int(time.time() * 1000)


class Agent:
    """One box: outbox + uplink + producers (health now; vision and config later)."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.boot_id = uuid.uuid4().hex[:12]
        self.boot_ms = wall_ms()
        self.stop_event = threading.Event()
        self.outbox = Outbox(cfg.outbox.path, cfg.outbox.max_bytes)
        self.uplink = Uplink(cfg, self.outbox, self._state_payload)
        self.health = HealthCollector(cfg.health.disk_path)
        self._threads: list[threading.Thread] = []
        self.kinds: dict[str, type[msgspec.Struct]] = dict(_KINDS)

    # --- TelemetrySink --------------------------------------------------------------------

    def put(self, kind: str, fields: dict[str, Any], priority: Priority) -> int:
        model = self.kinds.get(kind)
        if model is None:
            raise ValueError(f"no payload model for telemetry kind {kind!r}")
        topic = topics.device_topic(self.cfg.device_id, kind)

        def build(seq: int) -> bytes:
            try:
                obj = msgspec.convert({**fields, "seq": seq}, model)
            except msgspec.ValidationError as exc:
                raise ValueError(f"invalid {kind} payload: {exc}") from exc
            return payloads.encode(obj)

        try:
            seq = self.outbox.put(topic, build, priority)
        except OutboxFull as exc:
            log.warning("%s", exc)
            return 0
        self.uplink.wake()
        return seq

    # --- producers ------------------------------------------------------------------------

    def _state_payload(self, online: bool) -> bytes:
        return payloads.encode(payloads.State(
            ts=wall_ms(), seq=max(1, self.outbox.last_seq()), online=online,
            agent_version=__version__, boot_id=self.boot_id, boot_ts=self.boot_ms,
            profile=self.cfg.profile, health_interval_s=self.cfg.health.interval,
        ))

    def health_fields(self) -> dict[str, Any]:
        fields = self.health.sample()
        dropped = self.outbox.dropped()
        fields.update(
            ts=wall_ms(),
            outbox_depth=self.outbox.depth,
            outbox_bytes=self.outbox.size_bytes,
            outbox_oldest_s=round(self.outbox.oldest_age_s(), 1),
            outbox_dropped=sum(dropped.values()),
            reconnects=self.uplink.stats.reconnects,
        )
        return fields

    def _health_loop(self) -> None:
        interval = self.cfg.health.interval
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            self.put(topics.HEALTH, self.health_fields(), Priority.HEALTH)
            next_at += interval
            # If we fell far behind (suspended box), skip missed ticks instead of bursting.
            next_at = max(next_at, time.monotonic())
            self.stop_event.wait(max(0.0, next_at - time.monotonic()))

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.uplink.start()
        t = threading.Thread(target=self._health_loop, name="dcor.health", daemon=True)
        t.start()
        self._threads.append(t)
        log.info("agent %s started (boot %s, next seq %d)", self.cfg.device_id, self.boot_id,
                 self.outbox.next_seq)

    def stop(self) -> None:
        self.stop_event.set()
        for t in reversed(self._threads):
            t.join(5)
        self.uplink.stop()
        self.outbox.close()

    def run_forever(self) -> int:
        stop = threading.Event()

        def _signal(signum: int, _frame: Any) -> None:
            log.info("signal %d: stopping", signum)
            stop.set()

        signal.signal(signal.SIGTERM, _signal)
        signal.signal(signal.SIGINT, _signal)
        self.start()
        stop.wait()
        self.stop()
        return 0


def check_secret_files(cfg: AgentConfig) -> None:
    """Refuse to run with a credential file others can read."""
    pf = cfg.mqtt.password_file
    if pf is not None:
        mode = os.stat(pf).st_mode
        if mode & 0o077:
            raise PermissionError(
                f"{pf} is readable by group or others (mode {oct(mode & 0o777)}): "
                f"run 'chmod 600 {pf}'"
            )
