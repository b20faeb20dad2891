"""Binary payloads: snapshots (``snapshot/<camera>``) and clip chunks (``clip/<camera>``).

The body is raw bytes (JPEG, or a slice of an MP4 file); everything else travels in MQTT 5
user properties, as strings, validated here on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

MAX_SNAPSHOT_BYTES: Final = 512 * 1024
MAX_CLIP_CHUNK_BYTES: Final = 256 * 1024
MAX_CLIP_BYTES: Final = 64 * 1024 * 1024
_MEDIA_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,127}")


class MediaMetaError(ValueError):
    """User properties of a media message are missing or invalid."""


def _int(props: Mapping[str, str], key: str, lo: int, hi: int) -> int:
    raw = props.get(key)
    if raw is None:
        raise MediaMetaError(f"missing user property {key!r}")
    if not raw.isdigit():
        raise MediaMetaError(f"user property {key!r} is not a whole number")
    value = int(raw)
    if not lo <= value <= hi:
        raise MediaMetaError(f"user property {key!r}={value} outside {lo}..{hi}")
    return value


def _media_id(props: Mapping[str, str], key: str) -> str:
    raw = props.get(key, "")
    if not _MEDIA_ID_RE.fullmatch(raw):
        raise MediaMetaError(f"user property {key!r} is not a valid id")
    return raw


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """``kind`` says why it was taken (event, periodic, on_demand); ``labels`` the classes
    drawn, comma-separated."""

    ts: int
    seq: int
    id: str
    event: str = ""
    kind: str = ""
    width: int = 0
    height: int = 0
    labels: str = ""

    def to_props(self) -> dict[str, str]:
        props = {"v": "1", "ts": str(self.ts), "seq": str(self.seq), "id": self.id}
        for key in ("event", "kind", "labels"):
            if getattr(self, key):
                props[key] = getattr(self, key)
        if self.width:
            props["width"], props["height"] = str(self.width), str(self.height)
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> SnapshotMeta:
        if props.get("v") != "1":
            raise MediaMetaError("unsupported or missing user property 'v'")
        event = props.get("event", "")
        if event and not _MEDIA_ID_RE.fullmatch(event):
            raise MediaMetaError("user property 'event' is not a valid id")
        has_size = "width" in props
        return cls(ts=_int(props, "ts", 0, 2**53), seq=_int(props, "seq", 1, 2**53),
                   id=_media_id(props, "id"), event=event, kind=props.get("kind", "")[:32],
                   width=_int(props, "width", 1, 10_000) if has_size else 0,
                   height=_int(props, "height", 1, 10_000) if has_size else 0,
                   labels=props.get("labels", "")[:256])


@dataclass(frozen=True, slots=True)
class ClipChunkMeta:
    ts: int
    seq: int
    clip: str
    offset: int
    total: int

    def to_props(self) -> dict[str, str]:
        return {"v": "1", "ts": str(self.ts), "seq": str(self.seq), "clip": self.clip,
                "offset": str(self.offset), "total": str(self.total)}

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> ClipChunkMeta:
        if props.get("v") != "1":
            raise MediaMetaError("unsupported or missing user property 'v'")
        total = _int(props, "total", 1, MAX_CLIP_BYTES)
        return cls(ts=_int(props, "ts", 0, 2**53), seq=_int(props, "seq", 1, 2**53),
                   clip=_media_id(props, "clip"), offset=_int(props, "offset", 0, total - 1),
                   total=total)
