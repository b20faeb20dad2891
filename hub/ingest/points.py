"""Payload -> InfluxDB lines, one builder per kind. Pure.

Tags are only what queries group by (device, kecamatan, kelurahan, camera, class, zone, line,
event kind); ``seq`` and event ids are fields, so series cardinality stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from dcor_wire import payloads, topics
from dcor_wire.media import ClipChunkMeta, SnapshotMeta
from hub.ingest.lineproto import line


class SiteTagsLike:
    kecamatan: str
    kelurahan: str


def _tags(dev: str, site: Any) -> dict[str, str]:
    return {"device": dev, "kecamatan": site.kecamatan, "kelurahan": site.kelurahan}


def _keep(lines: list[str | None]) -> list[str]:
    return [x for x in lines if x is not None]


def health_lines(dev: str, site: Any, h: payloads.Health) -> list[str]:
    fields = {k: v for k, v in msgspec.structs.asdict(h).items()
              if k not in ("v", "ts", "cameras") and v is not None}
    out = [line("health", _tags(dev, site), fields, h.ts)]
    for cam, ch in h.cameras.items():
        cam_fields = {k: v for k, v in msgspec.structs.asdict(ch).items() if v is not None}
        cam_fields["seq"] = h.seq
        out.append(line("camera_health", {**_tags(dev, site), "camera": cam}, cam_fields, h.ts))
    return _keep(out)


def state_lines(dev: str, site: Any, s: payloads.State) -> list[str]:
    fields = {"online": s.online, "last_seq": s.seq, "boot_id": s.boot_id,
              "agent_version": s.agent_version, "config_version": s.config_version}
    return _keep([line("presence", _tags(dev, site), fields, s.ts)])


def detections_lines(dev: str, site: Any, d: payloads.Detections) -> list[str]:
    base = {**_tags(dev, site), "camera": d.camera}
    out = [line("detections", base, {"seq": d.seq, "frames": d.frames,
                                     "interval_ms": d.interval_ms}, d.ts)]
    for cls, n in d.counts.items():
        fields: dict[str, object] = {"count": n, "tracks": d.tracks.get(cls, 0), "seq": d.seq}
        if cls in d.max_score:
            fields["max_score"] = d.max_score[cls]
        out.append(line("object_counts", {**base, "class": cls}, fields, d.ts))
    for zone, per_class in d.zones.items():
        for cls, n in per_class.items():
            out.append(line("zone_counts", {**base, "zone": zone, "class": cls},
                            {"count": n, "seq": d.seq}, d.ts))
    for line_id, per_class_lc in d.crossings.items():
        for cls, lc in per_class_lc.items():
            out.append(line("line_crossings", {**base, "line": line_id, "class": cls},
                            {"right": lc.right, "left": lc.left, "seq": d.seq}, d.ts))
    return _keep(out)


def event_lines(dev: str, site: Any, e: payloads.Event) -> list[str]:
    fields = {k: v for k, v in msgspec.structs.asdict(e).items()
              if k not in ("v", "ts", "camera", "kind") and v not in (None, "")}
    return _keep([line("events", {**_tags(dev, site), "camera": e.camera, "kind": e.kind},
                       fields, e.ts)])


def snapshot_lines(dev: str, site: Any, camera: str, meta: SnapshotMeta, size: int) -> list[str]:
    fields = {"seq": meta.seq, "id": meta.id, "bytes": size, "event": meta.event}
    return _keep([line("snapshots", {**_tags(dev, site), "camera": camera}, fields, meta.ts)])


def clip_chunk_lines(dev: str, site: Any, camera: str, meta: ClipChunkMeta,
                     size: int) -> list[str]:
    fields = {"seq": meta.seq, "clip": meta.clip, "offset": meta.offset, "bytes": size,
              "total": meta.total}
    return _keep([line("clip_chunks", {**_tags(dev, site), "camera": camera}, fields,
                       meta.ts)])


def config_reported_lines(dev: str, site: Any, r: payloads.ConfigReported) -> list[str]:
    fields = {"seq": r.seq, "version": r.version, "desired_version": r.desired_version,
              "reason": r.reason, "error": r.error[:256], "rollout": r.rollout}
    return _keep([line("config_reports", {**_tags(dev, site), "status": r.status}, fields,
                       r.ts)])


JSON_KINDS: dict[str, tuple[type[msgspec.Struct], Callable[[str, Any, Any], list[str]]]] = {
    topics.STATE: (payloads.State, state_lines),
    topics.HEALTH: (payloads.Health, health_lines),
    topics.DETECTIONS: (payloads.Detections, detections_lines),
    topics.EVENTS: (payloads.Event, event_lines),
    topics.CONFIG_REPORTED: (payloads.ConfigReported, config_reported_lines),
}
