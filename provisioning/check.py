"""``dcor-provision check`` on the box: is this install good? A checklist, then a report to
the hub, which marks the install verified when every item passed and the hub itself holds
the test snapshot.

Items: TLS to the broker (certificate and host name), the broker credentials, clock sync,
a frame from the camera, the model loads, and a test snapshot the hub acknowledges as stored
(the same end-to-end ack as telemetry, so "reached the hub" means stored, not just sent).
The snapshot takes its ``seq`` from the agent's own outbox, so it never collides with the
agent's numbering; the check connects as ``<device>-check`` and publishes no presence, so a
running agent is not disturbed.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dcor_wire import topics
from dcor_wire.media import SnapshotMeta
from edge_agent.config import AgentConfig
from edge_agent.mqtt_tls import MqttClient, TlsConfigError, tls_context
from edge_agent.outbox import Outbox
from edge_agent.telemetry import Priority

CLOCK_TOLERANCE_S: Final = 5.0


@dataclass(frozen=True)
class CheckItem:
    name: str
    ok: bool
    detail: str


@dataclass
class CheckRun:
    items: list[CheckItem]
    snapshot: str = ""  # media id of the test snapshot the hub stored

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.items)

    def report(self) -> dict[str, Any]:
        return {"items": [asdict(i) for i in self.items], "snapshot": self.snapshot}


def _wall_ms() -> int:
    return int(time.time() * 1000)


def check_tls(cfg: AgentConfig, timeout: float) -> CheckItem:
    if cfg.mqtt.tls is None:
        return CheckItem("broker_tls", False, "no TLS configured (mqtt.tls): refusing to "
                         "check a plaintext link")
    try:
        ctx = tls_context(cfg.mqtt.tls)
        with socket.create_connection((cfg.mqtt.host, cfg.mqtt.port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=cfg.mqtt.host) as tls:
            version = tls.version()
    except (OSError, TlsConfigError) as exc:
        return CheckItem("broker_tls", False, f"{cfg.mqtt.host}:{cfg.mqtt.port}: {exc}")
    return CheckItem("broker_tls", True, f"{cfg.mqtt.host}:{cfg.mqtt.port} {version}, "
                     "certificate and host name verified")


def check_clock(hub_time: datetime | None, synced: bool | None) -> CheckItem:
    if synced:
        return CheckItem("clock", True, "synchronised (NTP)")
    if hub_time is not None:
        skew = abs(datetime.now(UTC).timestamp() - hub_time.timestamp())
        if skew <= CLOCK_TOLERANCE_S:
            return CheckItem("clock", True, f"not NTP-synchronised, but within {skew:.0f} s "
                             "of the hub; enable NTP (timedatectl set-ntp true)")
        return CheckItem("clock", False, f"{skew:.0f} s away from the hub's clock")
    return CheckItem("clock", False, "not synchronised and the hub's time is unknown")


def grab_frame(cfg: AgentConfig, timeout: float) -> tuple[CheckItem, Any]:
    """(item, BGR image or None). A box without cameras passes with a test pattern."""
    import numpy as np

    cams = [c for c in cfg.cameras if c.enabled]
    if not cams:
        pattern = np.full((240, 320, 3), 128, dtype=np.uint8)
        return CheckItem("camera", True, "no cameras on this box"), pattern
    from edge_agent.vision.sources import make_source

    cam = cams[0]
    source = make_source(cam)
    deadline = time.monotonic() + timeout
    last = ""
    try:
        source.open()
        while time.monotonic() < deadline:
            try:
                frame = source.read()
                h, w = frame.shape[:2]
                return CheckItem("camera", True, f"{cam.id}: frame {w}x{h}"), frame
            except Exception as exc:  # any source error: retry until the deadline
                last = str(exc)
                time.sleep(0.2)
    except Exception as exc:
        last = str(exc)
    finally:
        source.close()
    return CheckItem("camera", False, f"{cam.id}: no frame within {timeout:.0f} s: {last}"), None


def check_model(cfg: AgentConfig) -> CheckItem:
    if cfg.detector is None:
        return CheckItem("model", True, "no detector configured")
    try:
        from edge_agent.vision.detector import LiteRTDetector

        LiteRTDetector(cfg.detector)
    except Exception as exc:
        return CheckItem("model", False, f"{cfg.detector.model}: {exc}")
    return CheckItem("model", True, f"{cfg.detector.model.name} loaded")


class _Session:
    """One short MQTT connection as ``<device>-check``: connect, send, wait for the ack."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.refused = ""
        self.acked: set[int] = set()
        self.ack_seen = threading.Condition()
        c = MqttClient(CallbackAPIVersion.VERSION2, client_id=f"{cfg.device_id}-check",
                       protocol=mqtt.MQTTv5)
        if cfg.mqtt.tls is not None:
            c.tls_set_context(tls_context(cfg.mqtt.tls))
        username = cfg.mqtt.username or (cfg.device_id if cfg.mqtt.password_file else "")
        if username:
            c.username_pw_set(username, cfg.password() or None)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *_a: self.subscribed.set()
        c.on_message = self._on_message
        self.client = c
        self.ack_topic = topics.device_topic(cfg.device_id, topics.ACK)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        else:
            client.subscribe(self.ack_topic, qos=1)
        self.connected.set()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
            seqs = {s for lo, hi in [*body.get("ranges", []), *body.get("rejected", [])]
                    for s in range(int(lo), min(int(hi), int(lo) + 10_000) + 1)}
        except (ValueError, TypeError):
            return
        with self.ack_seen:
            self.acked |= seqs
            self.ack_seen.notify_all()

    def __enter__(self) -> _Session:
        self.client.connect(self.cfg.mqtt.host, self.cfg.mqtt.port, keepalive=30)
        self.client.loop_start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_acked(self, seq: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.ack_seen:
            while seq not in self.acked:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.ack_seen.wait(min(left, 0.5))
        return True


def check_broker_and_snapshot(cfg: AgentConfig, frame: Any, timeout: float
                              ) -> tuple[CheckItem, CheckItem, str]:
    """(credentials item, snapshot item, media id of the stored snapshot or '')."""
    from edge_agent.vision.config import SnapshotClass
    from edge_agent.vision.snapshots import encode_snapshot

    no_snapshot = CheckItem("snapshot", False, "not sent: the broker connection failed")
    try:
        session = _Session(cfg)
        session.__enter__()
    except (OSError, TlsConfigError, ValueError) as exc:
        return CheckItem("credentials", False, f"cannot connect: {exc}"), no_snapshot, ""
    try:
        if not session.connected.wait(timeout) or session.refused:
            why = session.refused or f"no answer within {timeout:.0f} s"
            return CheckItem("credentials", False, f"broker refused: {why}"), no_snapshot, ""
        creds = CheckItem("credentials", True, f"broker accepted {cfg.device_id}")
        if frame is None:
            return creds, CheckItem("snapshot", False, "no frame to send"), ""
        session.subscribed.wait(timeout)
        snap = encode_snapshot(frame, SnapshotClass())
        media_id = f"check-{secrets.token_hex(4)}"
        ts = _wall_ms()
        topic = topics.snapshot_topic(cfg.device_id,
                                      cfg.cameras[0].id if cfg.cameras else "check")

        def meta(seq: int) -> dict[str, str]:
            return SnapshotMeta(ts=ts, seq=seq, id=media_id, kind="check", width=snap.width,
                                height=snap.height).to_props()

        cfg.outbox.path.parent.mkdir(parents=True, exist_ok=True)
        outbox = Outbox(cfg.outbox.path, cfg.outbox.max_bytes)
        try:
            seq = outbox.put(topic, lambda _s: snap.jpeg, Priority.SNAPSHOT, meta)
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = list(meta(seq).items())
            session.client.publish(topic, snap.jpeg, qos=1, properties=props)
            if not session.wait_acked(seq, timeout):
                return creds, CheckItem("snapshot", False, f"the hub did not confirm storing "
                                        f"it within {timeout:.0f} s"), ""
            outbox.ack([(seq, seq)])
        finally:
            outbox.close()
        return creds, CheckItem("snapshot", True, f"stored by the hub as {media_id} "
                                f"({len(snap.jpeg)} bytes)"), media_id
    finally:
        session.__exit__()


def run_checks(cfg: AgentConfig, *, hub_time: datetime | None, timeout: float = 20.0,
               clock_synced: Callable[[], bool | None] | None = None) -> CheckRun:
    if clock_synced is None:
        from edge_agent.health import clock_synced as kernel_clock_synced

        clock_synced = kernel_clock_synced
    tls = check_tls(cfg, timeout)
    camera, frame = grab_frame(cfg, timeout)
    model = check_model(cfg)
    creds, snapshot, media_id = check_broker_and_snapshot(cfg, frame, timeout)
    clock = check_clock(hub_time, clock_synced())
    return CheckRun([tls, creds, clock, camera, model, snapshot], media_id)


def format_checklist(run: CheckRun) -> str:
    lines = [f"  [{'ok' if i.ok else 'FAIL':>4}] {i.name:<12} {i.detail}" for i in run.items]
    verdict = "all checks passed" if run.ok else "some checks FAILED"
    return "\n".join(["on-site check:", *lines, f"  => {verdict}"])
