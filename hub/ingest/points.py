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
from hub.ingest.lineproto import head, line, struct_fields


class SiteTagsLike:
    kecamatan: str
    kelurahan: str


def _tags(dev: str, site: Any) -> dict[str, str]:
    return {"device": dev, "kecamatan": site.kecamatan, "kelurahan": site.kelurahan}


# The escaped head of each (measurement, device, site, extra tags): the same few thousand
# strings for every message of the fleet, so they are made once (bounded).
_HEADS: dict[tuple[str, str, Any, tuple[tuple[str, str], ...]], str] = {}
_HEADS_MAX = 200_000


def _head(measurement: str, dev: str, site: Any, *extra: tuple[str, str]) -> str:
    key = (measurement, dev, site, extra)
    h = _HEADS.get(key)
    if h is None:
        if len(_HEADS) >= _HEADS_MAX:
            _HEADS.clear()
        h = _HEADS[key] = head(measurement, {**_tags(dev, site), **dict(extra)})
    return h


_HEALTH_SKIP = frozenset({"v", "ts", "cameras"})


def _keep(lines: list[str | None]) -> list[str]:
    return [x for x in lines if x is not None]


def health_lines(dev: str, site: Any, h: payloads.Health) -> list[str]:
    ts = h.ts
    out = [f"{_head('health', dev, site)} {struct_fields(h, _HEALTH_SKIP)} {ts}"]
    for cam, ch in h.cameras.items():
        cam_fields = struct_fields(ch)
        seq = f"seq={h.seq}i"
        out.append(f"{_head('camera_health', dev, site, ('camera', cam))} "
                   f"{cam_fields + ',' + seq if cam_fields else seq} {ts}")
    return out


def state_lines(dev: str, site: Any, s: payloads.State) -> list[str]:
    fields = {"online": s.online, "last_seq": s.seq, "boot_id": s.boot_id,
              "agent_version": s.agent_version, "config_version": s.config_version}
    return _keep([line("presence", _tags(dev, site), fields, s.ts)])


def detections_lines(dev: str, site: Any, d: payloads.Detections) -> list[str]:
    # Counts and tracks are validated non-negative integers and scores finite floats, so the
    # fields are written directly (this runs for every detections message of the fleet).
    cam = ("camera", d.camera)
    ts, seq = d.ts, d.seq
    out = [f"{_head('detections', dev, site, cam)} seq={seq}i,frames={d.frames}i,"
           f"interval_ms={d.interval_ms}i {ts}"]
    tracks, scores = d.tracks, d.max_score
    for cls, n in d.counts.items():
        score = scores.get(cls)
        tail = "" if score is None else f",max_score={float(score)!r}"
        out.append(f"{_head('object_counts', dev, site, cam, ('class', cls))} "
                   f"count={n}i,tracks={tracks.get(cls, 0)}i,seq={seq}i{tail} {ts}")
    for zone, per_class in d.zones.items():
        for cls, n in per_class.items():
            head = _head("zone_counts", dev, site, cam, ("zone", zone), ("class", cls))
            out.append(f"{head} count={n}i,seq={seq}i {ts}")
    for line_id, per_class_lc in d.crossings.items():
        for cls, lc in per_class_lc.items():
            head = _head("line_crossings", dev, site, cam, ("line", line_id), ("class", cls))
            out.append(f"{head} right={lc.right}i,left={lc.left}i,seq={seq}i {ts}")
    return out


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
