"""Pure validation of one MQTT message into points: no I/O, table-tested.

The device id comes from the topic only (the broker ties the topic to the credential); a body
that names another device is refused rather than trusted or silently rewritten.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from dcor_wire import payloads, topics
from hub.ingest.lineproto import line

# Reasons a message is refused; the stats endpoint counts by these names.
BAD_TOPIC = "bad_topic"
OVERSIZED = "oversized"
UNKNOWN_DEVICE = "unknown_device"
BAD_JSON = "bad_json"
SCHEMA = "schema"
DEVICE_MISMATCH = "device_mismatch"
UNSUPPORTED_KIND = "unsupported_kind"
INTERNAL = "internal_error"
REASONS = (BAD_TOPIC, OVERSIZED, UNKNOWN_DEVICE, BAD_JSON, SCHEMA, DEVICE_MISMATCH,
           UNSUPPORTED_KIND, INTERNAL)


@dataclass(frozen=True, slots=True)
class SiteTags:
    kecamatan: str = ""
    kelurahan: str = ""


@dataclass(slots=True)
class Accepted:
    device_id: str
    kind: str
    payload: msgspec.Struct
    lines: list[str]
    seq: int | None  # None for presence (state), which is not acknowledged by seq


@dataclass(slots=True)
class Rejected:
    reason: str
    detail: str
    device_id: str | None = None
    seq: int | None = None


Result = Accepted | Rejected


@dataclass
class Validator:
    """Turns (topic, bytes) into points. ``site_of`` answers None for an unknown device."""

    site_of: Callable[[str], SiteTags | None]
    models: Mapping[str, type[msgspec.Struct]] = field(default_factory=lambda: {
        topics.STATE: payloads.State,
        topics.HEALTH: payloads.Health,
    })
    builders: Mapping[str, Callable[[str, SiteTags, Any], list[str]]] = field(
        default_factory=lambda: {topics.STATE: state_lines, topics.HEALTH: health_lines})

    def check(self, topic: str, data: bytes) -> Result:
        try:
            return self._check(topic, data)
        except Exception as exc:  # a validator bug must refuse the message, not wedge it
            return Rejected(INTERNAL, f"{type(exc).__name__}: {exc}")

    def _check(self, topic: str, data: bytes) -> Result:
        try:
            parsed = topics.parse_topic(topic)
        except topics.TopicError as exc:
            return Rejected(BAD_TOPIC, str(exc))
        dev = parsed.device_id
        if len(data) > payloads.MAX_JSON_BYTES:
            return Rejected(OVERSIZED, f"{len(data)} bytes > {payloads.MAX_JSON_BYTES}", dev)
        site = self.site_of(dev)
        if site is None:
            return Rejected(UNKNOWN_DEVICE, f"device {dev} is not enrolled", dev)
        model = self.models.get(parsed.kind)
        if model is None:
            return Rejected(UNSUPPORTED_KIND, f"no ingest for {parsed.kind}", dev)
        try:
            obj = payloads.decode(model, data)
        except msgspec.ValidationError as exc:  # a subclass of DecodeError: test it first
            return _schema_rejection(dev, data, exc)
        except msgspec.DecodeError as exc:
            return Rejected(BAD_JSON, str(exc), dev)
        lines = self.builders[parsed.kind](dev, site, obj)
        seq = None if parsed.kind == topics.STATE else int(obj.seq)  # type: ignore[attr-defined]
        return Accepted(dev, parsed.kind, obj, lines, seq)


class _Probe(msgspec.Struct):
    """The few fields worth reading from a body that failed validation (others skipped)."""

    device_id: Any = None
    device: Any = None
    seq: Any = None


_probe = msgspec.json.Decoder(_Probe)


def _schema_rejection(dev: str, data: bytes, exc: Exception) -> Rejected:
    try:
        body = _probe.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return Rejected(SCHEMA, str(exc), dev)
    named = body.device_id if body.device_id is not None else body.device
    if named is not None and named != dev:
        return Rejected(DEVICE_MISMATCH, f"body names {named!r}, topic names {dev}", dev)
    raw = body.seq
    seq = raw if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw < 2**53 else None
    return Rejected(SCHEMA, str(exc), dev, seq)


def _tags(dev: str, site: SiteTags) -> dict[str, str]:
    return {"device": dev, "kecamatan": site.kecamatan, "kelurahan": site.kelurahan}


def health_lines(dev: str, site: SiteTags, h: payloads.Health) -> list[str]:
    fields = {k: v for k, v in msgspec.structs.asdict(h).items()
              if k not in ("v", "ts", "cameras") and v is not None}
    out = [line("health", _tags(dev, site), fields, h.ts)]
    for cam, ch in h.cameras.items():
        cam_fields = {k: v for k, v in msgspec.structs.asdict(ch).items() if v is not None}
        cam_fields["seq"] = h.seq
        out.append(line("camera_health", {**_tags(dev, site), "camera": cam}, cam_fields, h.ts))
    return [x for x in out if x is not None]


def state_lines(dev: str, site: SiteTags, s: payloads.State) -> list[str]:
    fields = {"online": s.online, "last_seq": s.seq, "boot_id": s.boot_id,
              "agent_version": s.agent_version, "config_version": s.config_version}
    result = line("presence", _tags(dev, site), fields, s.ts)
    return [result] if result else []
