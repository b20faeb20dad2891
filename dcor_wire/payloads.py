"""Payload models of wire contract v1, validated where they are built and where they are read.

Every JSON payload carries ``v`` (schema version), ``ts`` (device clock, ms, taken at capture
time) and ``seq`` (per device, monotonic across restarts). Unknown fields are refused so a
typo on either side shows up at once instead of being silently ignored.

``state`` is presence, not a reading: it does not consume a ``seq`` of its own but carries the
newest ``seq`` the device had produced when it was written, so the hub can tell from a last
will how much telemetry is still on its way.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, TypeVar, get_args

import msgspec

MAX_JSON_BYTES: Final = 64 * 1024
# Bounds keep out infinities and values no sensor produces; JSON has no NaN literal and
# msgspec refuses one.
_Pct = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
_NonNeg = Annotated[float, msgspec.Meta(ge=0.0, le=1e12)]
_Count = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
_Ms = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
_Seq = Annotated[int, msgspec.Meta(ge=1, le=2**53)]
_Short = Annotated[str, msgspec.Meta(max_length=128)]
_Id = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class _Base(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    v: Annotated[int, msgspec.Meta(ge=1, le=1)] = 1
    ts: _Ms
    seq: _Seq


class State(_Base):
    online: bool
    agent_version: _Short = ""
    boot_id: _Short = ""
    boot_ts: _Ms = 0
    profile: _Short = ""
    config_version: _Count = 0
    health_interval_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 10.0


class CameraHealth(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    state: _Short = "streaming"
    fps: _NonNeg = 0.0
    dropped: _Count = 0
    reconnects: _Count = 0
    inference_ms: _NonNeg | None = None


class Health(_Base):
    """Absent sources stay absent (None, omitted on the wire), never 0."""

    uptime_s: _NonNeg
    cpu_pct: _Pct | None = None
    load1: _NonNeg | None = None
    mem_pct: _Pct | None = None
    mem_used_mb: _NonNeg | None = None
    disk_pct: _Pct | None = None
    disk_free_mb: _NonNeg | None = None
    temp_c: Annotated[float, msgspec.Meta(ge=-60.0, le=200.0)] | None = None
    throttled_now: bool | None = None
    throttled_ever: bool | None = None
    undervoltage_now: bool | None = None
    undervoltage_ever: bool | None = None
    clock_synced: bool | None = None
    outbox_depth: _Count = 0
    outbox_bytes: _Count = 0
    outbox_oldest_s: _NonNeg = 0.0
    outbox_dropped: _Count = 0
    reconnects: _Count = 0
    cameras: dict[_Id, CameraHealth] = {}


class Ack(_Base):
    """Hub -> agent: the ``seq`` numbers of this device that are stored, as inclusive ranges.

    ``rejected`` lists seqs the hub refused as invalid; the agent drops those rows too, so a
    bad row cannot be resent forever. ``seq`` here is the hub's own ack counter.
    """

    ranges: list[tuple[_Seq, _Seq]] = []
    rejected: list[tuple[_Seq, _Seq]] = []


T = TypeVar("T", bound=msgspec.Struct)

_encoder = msgspec.json.Encoder()
_decoders: dict[type, msgspec.json.Decoder[Any]] = {}


def encode(payload: msgspec.Struct) -> bytes:
    data = _encoder.encode(payload)
    # omit_defaults drops ``v`` (its only valid value is its default), yet the contract says
    # every payload carries it. ts and seq are always present, so data[1:] starts with a key.
    if isinstance(payload, _Base) and payload.v == 1:
        data = b'{"v":1,' + data[1:]
    return data


def decode(kind: type[T], data: bytes) -> T:
    """Decode and validate; raise ``msgspec.ValidationError`` / ``DecodeError`` when invalid."""
    dec = _decoders.get(kind)
    if dec is None:
        dec = _decoders[kind] = msgspec.json.Decoder(kind)
    result: T = dec.decode(data)
    return result


def to_ranges(seqs: list[int] | set[int]) -> list[tuple[int, int]]:
    """Compress seq numbers into sorted inclusive ranges: [1,2,3,7] -> [(1,3),(7,7)]."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


# --- vision: detections and events (edge_agent.vision) -------------------------------------

_Score = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
_EventId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,127}$")]


class LineCount(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Crossings of one counting line by one class, per direction: ``right`` = onto the
    right-hand side of the line drawn from its first point to its second (as seen on the
    image), ``left`` the other way."""

    right: _Count = 0
    left: _Count = 0


class Detections(_Base):
    """One camera, one interval starting at ``ts`` and lasting ``interval_ms``.

    ``counts`` and ``zones`` hold the peak number of objects of a class seen at once;
    ``tracks`` how many distinct objects of a class were tracked; ``frames`` how many
    inferences ran (0 means the counts are unknown, not zero).
    """

    camera: _Id
    interval_ms: Annotated[int, msgspec.Meta(ge=1, le=86_400_000)]
    frames: _Count = 0
    counts: dict[_Short, _Count] = {}
    zones: dict[_Id, dict[_Short, _Count]] = {}
    tracks: dict[_Short, _Count] = {}
    crossings: dict[_Id, dict[_Short, LineCount]] = {}
    max_score: dict[_Short, _Score] = {}


EventKind = Literal[
    "zone_enter", "crowd", "camera_down", "frozen", "covered", "scene_change",
    "detector_stalled",
]
EVENT_KINDS: Final[tuple[str, ...]] = get_args(EventKind)


class Event(_Base):
    """A discrete event. ``id`` is stable: a condition's ``raised`` and ``cleared`` share it
    and a redelivery repeats it. ``snapshot`` names the JPEG sent on ``snapshot/<camera>``
    (its ``id`` user property); ``clip_start_ts``/``clip_end_ts`` is the range to ask for
    with ``cmd/upload_clip``."""

    id: _EventId
    camera: _Id
    kind: EventKind
    status: Literal["raised", "cleared", "instant"] = "instant"
    started_ts: _Ms | None = None
    zone: _Id | None = None
    label: _Short | None = None
    count: _Count | None = None
    score: _Score | None = None
    track: _Count | None = None
    snapshot: _Short | None = None
    clip_start_ts: _Ms | None = None
    clip_end_ts: _Ms | None = None
    detail: Annotated[str, msgspec.Meta(max_length=256)] = ""


# --- configuration reports (edge_agent.remoteconf -> hub.rollout) ---------------------------

MAX_CONFIG_BYTES: Final = 256 * 1024  # a signed config/desired envelope; larger is refused
CONFIG_STATUSES: Final = ("applied", "rejected", "rolled_back")
_Digest = Annotated[str, msgspec.Meta(max_length=80)]


class ConfigReported(_Base):
    """Agent -> hub on ``config/reported``: what happened to a desired configuration.

    ``version``/``digest`` are what is in force after this event (0 and "" = the box's own
    agent.yaml only); ``desired_version``/``desired_digest`` the document the report is about.
    ``reason`` is a short code (``bad_signature``, ``stale_version``, ``invalid``,
    ``health``...), ``error`` the human detail.
    """

    status: Literal["applied", "rejected", "rolled_back"]
    version: _Count = 0
    digest: _Digest = ""
    desired_version: _Count = 0
    desired_digest: _Digest = ""
    reason: _Short = ""
    error: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    rollout: _Short = ""
    restarted: list[_Short] = []
