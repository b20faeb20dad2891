"""Pure validation of one MQTT message into points: no I/O, table-tested.

The device id comes from the topic only (the broker ties the topic to the credential); a body
that names another device is refused rather than trusted or silently rewritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from dcor_wire import payloads, topics
from dcor_wire.media import (
    MAX_CLIP_CHUNK_BYTES,
    MAX_SNAPSHOT_BYTES,
    ClipChunkMeta,
    MediaMetaError,
    SnapshotMeta,
)
from hub.ingest import points
from hub.ingest.clockwindow import ClockWindow, QuarantineStamps, quarantine_line

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
    payload: msgspec.Struct | Media
    lines: list[str]
    seq: int | None  # None for presence (state), which is not acknowledged by seq
    quarantine: str = ""  # the clock-window reason when the lines went to quarantine


@dataclass(slots=True)
class Rejected:
    reason: str
    detail: str
    device_id: str | None = None
    seq: int | None = None


Result = Accepted | Rejected


@dataclass(slots=True)
class Media:
    """A snapshot or clip chunk: the bytes go to the media store before the ack."""

    camera: str
    meta: SnapshotMeta | ClipChunkMeta
    data: bytes


@dataclass
class Validator:
    """Turns (topic, bytes, user properties) into points. ``site_of`` answers None for an
    unknown device."""

    site_of: Callable[[str], SiteTags | None]
    json_kinds: Mapping[str, tuple[type[msgspec.Struct], Callable[[str, Any, Any], list[str]]]] \
        = field(default_factory=lambda: dict(points.JSON_KINDS))
    clock_window: ClockWindow = field(default_factory=ClockWindow)
    wall_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    _stamps: QuarantineStamps = field(default_factory=QuarantineStamps)

    def check(self, topic: str, data: bytes, props: Mapping[str, str] | None = None) -> Result:
        try:
            return self._check(topic, data, props or {})
        except Exception as exc:  # a validator bug must refuse the message, not wedge it
            return Rejected(INTERNAL, f"{type(exc).__name__}: {exc}")

    def _check(self, topic: str, data: bytes, props: Mapping[str, str]) -> Result:
        try:
            parsed = topics.parse_topic(topic)
        except topics.TopicError as exc:
            return Rejected(BAD_TOPIC, str(exc))
        dev = parsed.device_id
        if parsed.kind in (topics.SNAPSHOT, topics.CLIP):
            return self._check_media(dev, parsed.kind, parsed.sub or "", data, props)
        if len(data) > payloads.MAX_JSON_BYTES:
            return Rejected(OVERSIZED, f"{len(data)} bytes > {payloads.MAX_JSON_BYTES}", dev)
        site = self.site_of(dev)
        if site is None:
            return Rejected(UNKNOWN_DEVICE, f"device {dev} is not enrolled", dev)
        entry = self.json_kinds.get(parsed.kind)
        if entry is None:
            return Rejected(UNSUPPORTED_KIND, f"no ingest for {parsed.kind}", dev)
        model, build = entry
        try:
            obj = payloads.decode(model, data)
        except msgspec.ValidationError as exc:  # a subclass of DecodeError: test it first
            return _schema_rejection(dev, data, exc)
        except msgspec.DecodeError as exc:
            return Rejected(BAD_JSON, str(exc), dev)
        seq = None if parsed.kind == topics.STATE else int(obj.seq)  # type: ignore[attr-defined]
        now_ms = self.wall_ms()
        reason = self.clock_window.verdict(int(obj.ts), now_ms)  # type: ignore[attr-defined]
        if reason:
            tags = {"device": dev, "kecamatan": site.kecamatan, "kelurahan": site.kelurahan}
            q = quarantine_line(tags, parsed.kind, reason, obj, data,
                                self._stamps.stamp(dev, now_ms))
            return Accepted(dev, parsed.kind, obj, [q] if q else [], seq, reason)
        return Accepted(dev, parsed.kind, obj, build(dev, site, obj), seq)

    def _check_media(self, dev: str, kind: str, camera: str, data: bytes,
                     props: Mapping[str, str]) -> Result:
        limit = MAX_SNAPSHOT_BYTES if kind == topics.SNAPSHOT else MAX_CLIP_CHUNK_BYTES
        if len(data) > limit:
            return Rejected(OVERSIZED, f"{len(data)} bytes > {limit}", dev)
        site = self.site_of(dev)
        if site is None:
            return Rejected(UNKNOWN_DEVICE, f"device {dev} is not enrolled", dev)
        try:
            if kind == topics.SNAPSHOT:
                snap = SnapshotMeta.from_props(props)
                if not data.startswith(b"\xff\xd8"):
                    return Rejected(SCHEMA, "snapshot body is not a JPEG", dev, snap.seq)
                lines = points.snapshot_lines(dev, site, camera, snap, len(data))
                return Accepted(dev, kind, Media(camera, snap, data), lines, snap.seq)
            chunk = ClipChunkMeta.from_props(props)
        except MediaMetaError as exc:
            seq = props.get("seq", "")
            return Rejected(SCHEMA, str(exc), dev, int(seq) if seq.isdigit() else None)
        if chunk.offset + len(data) > chunk.total:
            return Rejected(SCHEMA, "clip chunk runs past the clip's total size", dev, chunk.seq)
        lines = points.clip_chunk_lines(dev, site, camera, chunk, len(data))
        return Accepted(dev, kind, Media(camera, chunk, data), lines, chunk.seq)


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
