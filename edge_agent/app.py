"""The agent's composition root: builds the stages, starts them in order, stops in reverse."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dcor_wire import payloads, topics
from dcor_wire.media import MAX_CLIP_CHUNK_BYTES, ClipChunkMeta
from edge_agent import __version__
from edge_agent.commands import CommandError, Commands, require_int
from edge_agent.config import AgentConfig
from edge_agent.health import HealthCollector
from edge_agent.outbox import Outbox, OutboxFull
from edge_agent.remoteconf.gate import Probe
from edge_agent.remoteconf.keys import load_hub_key
from edge_agent.remoteconf.manager import ConfigManager
from edge_agent.remoteconf.stages import diff_stages
from edge_agent.sdnotify import Notifier
from edge_agent.telemetry import Priority
from edge_agent.uplink import Uplink, first_connect_delay

if TYPE_CHECKING:
    from edge_agent.metrics import MetricsServer

log = logging.getLogger("dcor.agent")

_KINDS: dict[str, type[msgspec.Struct]] = {
    topics.HEALTH: payloads.Health,
    topics.DETECTIONS: payloads.Detections,
    topics.EVENTS: payloads.Event,
    topics.CONFIG_REPORTED: payloads.ConfigReported,
}
CLIP_CHUNK_BYTES = min(MAX_CLIP_CHUNK_BYTES, 128 * 1024)


def wall_ms() -> int:
    return int(time.time() * 1000)


def config_state_dir(cfg: AgentConfig) -> Path:
    """Where the desired-configuration state lives: beside the outbox (the box's durable
    state), never in the managed part of the configuration."""
    return cfg.outbox.path.parent / "config"


class Agent:
    """One box: outbox + uplink + producers (health, one vision pipeline per camera)."""

    def __init__(self, cfg: AgentConfig) -> None:
        """``cfg`` is the box's own agent.yaml; a configuration from the hub kept on disk
        (``edge_agent.remoteconf``) goes over it before any stage is built."""
        self.local_cfg = cfg
        self.remote = ConfigManager(cfg, state_dir=config_state_dir(cfg),
                                    public_key=load_hub_key(cfg.hub_public_key_file))
        cfg = self.remote.boot()
        self.cfg = cfg
        self.boot_id = uuid.uuid4().hex[:12]
        self.boot_ms = wall_ms()
        self.stop_event = threading.Event()
        self.outbox = Outbox(cfg.outbox.path, cfg.outbox.max_bytes)
        self.commands = Commands()
        # Only this first uplink waits: boxes that boot together must not connect together.
        self.uplink = self._new_uplink(cfg, start_delay=first_connect_delay(cfg))
        self.health = HealthCollector(cfg.health.disk_path)
        # systemd (Type=notify, WatchdogSec): READY=1 once started, WATCHDOG=1 from the
        # health loop, so a hung agent is restarted; a no-op outside systemd.
        self.notifier = Notifier()
        self._threads: list[threading.Thread] = []
        self._health_stop = threading.Event()
        self.metrics: MetricsServer | None = None
        self.kinds: dict[str, type[msgspec.Struct]] = dict(_KINDS)
        self.detector: Any = None
        self.pipelines = self._build_pipelines()
        self.commands.register("snapshot", self._cmd_snapshot)
        self.commands.register("upload_clip", self._cmd_upload_clip)

    def _new_uplink(self, cfg: AgentConfig, start_delay: float = 0.0) -> Uplink:
        return Uplink(cfg, self.outbox, self._state_payload, on_command=self._on_command,
                      on_config=self.remote.offer, start_delay=start_delay)

    def _build_pipelines(self) -> dict[str, Any]:
        if not self.cfg.cameras:
            return {}
        self.detector = self._new_detector()
        return {cam.id: self._new_pipeline(cam) for cam in self.cfg.cameras}

    def _new_detector(self) -> Any:
        if not self.cfg.detector or not self.cfg.cameras:
            return None
        # Imported here: a box without cameras never loads OpenCV, PyAV or LiteRT.
        from edge_agent.vision.detector import LiteRTDetector

        return LiteRTDetector(self.cfg.detector)

    def _new_pipeline(self, cam: Any) -> Any:
        from edge_agent.vision.pipeline import CameraPipeline

        return CameraPipeline(cam, self, self.detector, data_dir=self.cfg.data_dir)

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

        return self._put(topic, build, priority)

    def put_snapshot(self, camera_id: str, jpeg: bytes, meta: dict[str, str]) -> int:
        topic = topics.snapshot_topic(self.cfg.device_id, camera_id)
        return self._put(topic, lambda _seq: jpeg, Priority.SNAPSHOT,
                         props=lambda seq: {**meta, "v": "1", "seq": str(seq)})

    def _put(self, topic: str, build: Any, priority: Priority, props: Any = None) -> int:
        try:
            seq = self.outbox.put(topic, build, priority, props)
        except OutboxFull as exc:
            log.warning("%s", exc)
            return 0
        self.uplink.wake()
        return seq

    # --- commands -------------------------------------------------------------------------

    def _on_command(self, name: str, msg: mqtt.MQTTMessage) -> None:
        reply = self.commands.handle(name, bytes(msg.payload))
        response_topic = getattr(msg.properties, "ResponseTopic", None)
        if not response_topic:
            return
        if response_topic != topics.device_topic(self.cfg.device_id, topics.REPLY):
            log.warning("command %s asked for a reply on %s: refused", name, response_topic)
            return
        props = Properties(PacketTypes.PUBLISH)
        correlation = getattr(msg.properties, "CorrelationData", None)
        if correlation:
            props.CorrelationData = correlation
        self.uplink.publish_now(response_topic, json.dumps(reply).encode(), props)

    def _pipeline(self, req: dict[str, Any]) -> Any:
        camera = req.get("camera")
        if camera not in self.pipelines:
            raise CommandError(f"unknown camera {camera!r}; cameras: {sorted(self.pipelines)}")
        return self.pipelines[camera]

    def _cmd_snapshot(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"snapshot": self._pipeline(req).snapshot_now()}

    def _cmd_upload_clip(self, req: dict[str, Any]) -> dict[str, Any]:
        """Cut [start_ts, end_ts] from the ring (no re-encoding) and queue it, in chunks, at
        the lowest uplink class. Each chunk is an outbox row: the upload survives restarts
        and resumes where it stopped."""
        from edge_agent.vision.clips import cut_clip

        pipeline = self._pipeline(req)
        start = require_int(req, "start_ts")
        end = require_int(req, "end_ts", start + 1, start + 600_000)
        if pipeline.ring_dir is None:
            raise CommandError(f"camera {pipeline.camera.id} does not record video")
        clip_id = f"{pipeline.camera.id}-{start}-{end}"
        out = self.cfg.data_dir / "clips" / f"{clip_id}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        cut_clip(pipeline.ring_dir, start, end, out)
        size = out.stat().st_size
        chunks = self._queue_clip(pipeline.camera.id, clip_id, out)
        return {"clip": clip_id, "bytes": size, "chunks": chunks}

    def _queue_clip(self, camera_id: str, clip_id: str, path: Path) -> int:
        data = path.read_bytes()
        topic = topics.clip_topic(self.cfg.device_id, camera_id)
        ts = wall_ms()
        n = 0
        for offset in range(0, len(data), CLIP_CHUNK_BYTES):
            piece = data[offset: offset + CLIP_CHUNK_BYTES]

            def props(seq: int, offset: int = offset) -> dict[str, str]:
                return ClipChunkMeta(ts=ts, seq=seq, clip=clip_id, offset=offset,
                                     total=len(data)).to_props()

            self._put(topic, lambda _seq, piece=piece: piece, Priority.CLIP, props)
            n += 1
        path.unlink(missing_ok=True)  # the outbox holds the bytes now
        return n

    # --- producers ------------------------------------------------------------------------

    def _state_payload(self, online: bool) -> bytes:
        return payloads.encode(payloads.State(
            ts=wall_ms(), seq=max(1, self.outbox.last_seq()), online=online,
            agent_version=__version__, boot_id=self.boot_id, boot_ts=self.boot_ms,
            profile=self.cfg.profile, health_interval_s=self.cfg.health.interval,
            config_version=self.remote.version,
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
        if self.pipelines:
            fields["cameras"] = {cid: p.health() for cid, p in self.pipelines.items()}
        return fields

    def _health_loop(self, stop: threading.Event) -> None:
        interval = self.cfg.health.interval
        next_at = time.monotonic()
        while not (stop.is_set() or self.stop_event.is_set()):
            try:
                self.put(topics.HEALTH, self.health_fields(), Priority.HEALTH)
            except ValueError:
                log.exception("health sample refused by its own schema")
            self.notifier.watchdog()
            next_at += interval
            # If we fell far behind (suspended box), skip missed ticks instead of bursting.
            next_at = max(next_at, time.monotonic())
            self._wait_pinging(stop, next_at)

    def _wait_pinging(self, stop: threading.Event, until: float) -> None:
        """Wait for the next health tick; ping the watchdog on the way when its period is
        shorter than the health interval."""
        every = self.notifier.ping_every_s
        while True:
            left = until - time.monotonic()
            if left <= 0 or stop.wait(min(left, every) if every else left):
                return
            if until - time.monotonic() > 0:
                self.notifier.watchdog()

    def _start_health(self) -> None:
        self._health_stop = threading.Event()
        t = threading.Thread(target=self._health_loop, args=(self._health_stop,),
                             name="dcor.health", daemon=True)
        t.start()
        self._threads.append(t)

    def _stop_health(self) -> None:
        self._health_stop.set()
        for t in [t for t in self._threads if t.name == "dcor.health"]:
            t.join(5)
            self._threads.remove(t)

    # --- desired configuration (edge_agent.remoteconf) ------------------------------------

    def reconfigure(self, new: AgentConfig) -> list[str]:
        """Put ``new`` in force, restarting only the stages whose settings changed; returns
        their names. Called by the configuration manager's thread only."""
        ch = diff_stages(self.cfg, new)
        for cid in ch.cameras_stop:
            old = self.pipelines.pop(cid, None)
            if old is not None:
                old.stop()
        self.cfg = new
        if ch.detector:
            self.detector = self._new_detector()
        for cam in new.cameras:
            if cam.id in ch.cameras_start:
                pipeline = self._new_pipeline(cam)
                self.pipelines[cam.id] = pipeline
                pipeline.start()
        if ch.health:
            self._stop_health()
            self.health = HealthCollector(new.health.disk_path)
            self._start_health()
        if ch.uplink:
            # Broker and outbox tuning are read by the uplink when it is built.
            self.outbox.max_bytes = new.outbox.max_bytes
            self.uplink.stop()
            self.uplink = self._new_uplink(new)
            self.uplink.start()
        else:
            self.uplink.publish_state()
        if ch.metrics or (ch.uplink and self.metrics is not None):
            self._restart_metrics()  # it reads the uplink it was given
        return ch.names()

    def _restart_metrics(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        if self.cfg.metrics_port:
            from edge_agent.metrics import start_metrics_server

            self.metrics = start_metrics_server(self.outbox, self.uplink, self.cfg.metrics_port)

    def probe(self) -> Probe:
        """The running stages as the configuration trial sees them."""
        cams = {cid: str(p.health()["state"]) for cid, p in list(self.pipelines.items())
                if p.camera.enabled}
        inferences = None
        if self.detector is not None:
            inferences = {cid: int(p.analyzer.inferences)
                          for cid, p in list(self.pipelines.items()) if p.camera.enabled}
        return Probe(self.uplink.connected, cams, inferences)

    def report_config(self, fields: dict[str, Any]) -> None:
        self.put(topics.CONFIG_REPORTED, fields, Priority.ALARM)
        self.uplink.publish_state()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._restart_metrics()
        self.uplink.start()
        for p in self.pipelines.values():
            p.start()
        self._start_health()
        self.remote.start(self)
        log.info("agent %s started (boot %s, next seq %d, cameras %s)", self.cfg.device_id,
                 self.boot_id, self.outbox.next_seq, sorted(self.pipelines) or "none")
        self.notifier.ready(f"device {self.cfg.device_id}, boot {self.boot_id}")

    def stop(self) -> None:
        self.notifier.stopping()
        self.stop_event.set()
        self.remote.stop()
        self._health_stop.set()
        for t in reversed(self._threads):
            t.join(5)
        for p in reversed(list(self.pipelines.values())):
            p.stop()
        self.uplink.stop()
        if self.metrics is not None:
            self.metrics.close()
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
    """Refuse to run with a credential or key file others can read (or that is missing)."""
    for pf in cfg.secret_files():
        mode = os.stat(pf).st_mode
        if mode & 0o077:
            raise PermissionError(
                f"{pf} is readable by group or others (mode {oct(mode & 0o777)}): "
                f"run 'chmod 600 {pf}'"
            )
