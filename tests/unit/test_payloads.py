"""dcor_wire.payloads: strict decoding, absent sources absent, v/ts/seq on every payload."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from dcor_wire import payloads
from dcor_wire.payloads import (
    Ack,
    CameraHealth,
    Detections,
    Event,
    Health,
    LineCount,
    State,
    decode,
    encode,
    to_ranges,
)

FULL_HEALTH = Health(
    ts=1_700_000_000_000, seq=42, uptime_s=3600.5, cpu_pct=12.5, load1=0.7, mem_pct=40.0,
    mem_used_mb=812.3, disk_pct=55.0, disk_free_mb=10240.0, temp_c=61.2, throttled_now=False,
    throttled_ever=True, undervoltage_now=False, undervoltage_ever=True, clock_synced=True,
    outbox_depth=3, outbox_bytes=1234, outbox_oldest_s=2.5, outbox_dropped=1, reconnects=2,
    cameras={"front_gate": CameraHealth(state="frozen", fps=9.5, dropped=3, reconnects=1,
                                        inference_ms=41.0)},
)

ROUND_TRIP = [
    FULL_HEALTH,
    Health(ts=1, seq=1, uptime_s=0.0),
    State(ts=5, seq=9, online=True, agent_version="0.1.0", boot_id="b-1", boot_ts=4,
          profile="rpi4-cctv", config_version=7, health_interval_s=15.0),
    State(ts=5, seq=1, online=False),
    Ack(ts=5, seq=3, ranges=[(1, 4), (9, 9)], rejected=[(5, 5)]),
    Detections(ts=10, seq=11, camera="cam1", interval_ms=60_000, frames=300,
               counts={"person": 4, "car": 2}, zones={"gate": {"person": 1}},
               tracks={"person": 9}, crossings={"line_a": {"car": LineCount(right=3, left=1)}},
               max_score={"person": 0.91}),
    Event(ts=12, seq=13, id="cam1:crowd:1700000000000", camera="cam1", kind="crowd",
          status="raised", started_ts=11, zone="gate", label="person", count=30, score=0.8,
          track=4, snapshot="snap-1", clip_start_ts=1, clip_end_ts=2, detail="over 25"),
]


@pytest.mark.parametrize("obj", ROUND_TRIP, ids=lambda o: type(o).__name__)
def test_round_trip(obj: msgspec.Struct) -> None:
    data = encode(obj)
    assert len(data) < payloads.MAX_JSON_BYTES
    assert decode(type(obj), data) == obj


@pytest.mark.parametrize("obj", ROUND_TRIP, ids=lambda o: type(o).__name__)
def test_every_payload_carries_v_ts_and_seq_on_the_wire(obj: msgspec.Struct) -> None:
    body = json.loads(encode(obj))
    assert body["v"] == 1
    assert isinstance(body["ts"], int)
    assert isinstance(body["seq"], int)


def test_absent_sources_are_omitted_not_zero() -> None:
    body = json.loads(encode(Health(ts=1, seq=2, uptime_s=3.0, temp_c=50.0)))
    assert body == {"v": 1, "ts": 1, "seq": 2, "uptime_s": 3.0, "temp_c": 50.0}
    for absent in ("cpu_pct", "mem_pct", "disk_pct", "throttled_now", "clock_synced",
                   "cameras"):
        assert absent not in body
    back = decode(Health, encode(Health(ts=1, seq=2, uptime_s=3.0)))
    assert back.temp_c is None and back.cpu_pct is None and back.throttled_now is None


def test_false_and_zero_readings_are_kept_apart_from_absent() -> None:
    body = json.loads(encode(Health(ts=1, seq=2, uptime_s=3.0, cpu_pct=0.0,
                                    throttled_now=False, temp_c=0.0)))
    assert body["cpu_pct"] == 0.0 and body["throttled_now"] is False and body["temp_c"] == 0.0


def test_camera_health_inference_ms_absent_when_unknown() -> None:
    body = json.loads(encode(Health(ts=1, seq=2, uptime_s=1.0,
                                    cameras={"cam1": CameraHealth(fps=5.0)})))
    assert body["cameras"] == {"cam1": {"fps": 5.0}}


def test_v_is_implied_when_absent_and_checked_when_present() -> None:
    assert decode(Health, b'{"ts":1,"seq":2,"uptime_s":3}').v == 1
    with pytest.raises(msgspec.ValidationError):
        decode(Health, b'{"v":2,"ts":1,"seq":2,"uptime_s":3}')


GOOD_HEALTH: dict[str, Any] = {"v": 1, "ts": 1, "seq": 2, "uptime_s": 3.0}
BAD_HEALTH: list[tuple[str, dict[str, Any]]] = [
    ("unknown top-level field", {"device_id": "cam-001"}),
    ("typo of a known field", {"cpu_pc": 1.0}),
    ("unknown camera field", {"cameras": {"cam1": {"fsp": 1.0}}}),
    ("negative pct", {"cpu_pct": -0.1}),
    ("pct over 100", {"mem_pct": 100.5}),
    ("negative uptime", {"uptime_s": -1.0}),
    ("huge float", {"uptime_s": 1e300}),
    ("temperature of a broken sensor", {"temp_c": 1000.0}),
    ("huge int", {"outbox_depth": 2**64}),
    ("int past 2**53", {"outbox_bytes": 2**53 + 1}),
    ("negative count", {"reconnects": -1}),
    ("bool for a float", {"cpu_pct": True}),
    ("string for a float", {"cpu_pct": "12"}),
    ("float for an int", {"outbox_depth": 1.5}),
    ("int for a bool", {"throttled_now": 1}),
    ("null for a required field", {"uptime_s": None}),
    ("seq zero", {"seq": 0}),
    ("negative ts", {"ts": -1}),
    ("ts as a float", {"ts": 1.5}),
    ("camera id with a slash", {"cameras": {"a/b": {}}}),
    ("camera id uppercase", {"cameras": {"Cam1": {}}}),
    ("v 0", {"v": 0}),
]


@pytest.mark.parametrize(("why", "patch"), BAD_HEALTH, ids=[b[0] for b in BAD_HEALTH])
def test_invalid_health_is_refused(why: str, patch: dict[str, Any]) -> None:
    data = json.dumps({**GOOD_HEALTH, **patch}).encode()
    with pytest.raises(msgspec.ValidationError):
        decode(Health, data)


@pytest.mark.parametrize("missing", ["ts", "seq", "uptime_s"])
def test_required_fields_are_required(missing: str) -> None:
    body = {k: v for k, v in GOOD_HEALTH.items() if k != missing}
    with pytest.raises(msgspec.ValidationError, match=missing):
        decode(Health, json.dumps(body).encode())


@pytest.mark.parametrize(
    "raw",
    [
        b'{"ts":1,"seq":2,"uptime_s":NaN}',
        b'{"ts":1,"seq":2,"uptime_s":Infinity}',
        b'{"ts":1,"seq":2,"uptime_s":-Infinity}',
        b'{"ts":1,"seq":2,"uptime_s":1e999}',  # overflows to infinity
        b'{"ts":1,"seq":2,"cpu_pct":1e999,"uptime_s":1}',
    ],
)
def test_nan_and_infinity_are_refused(raw: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):  # ValidationError is a subclass
        decode(Health, raw)


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"null", b'{"ts":1,"seq":2,"uptime_s":1}x',
                                 b"\xff\xfe"])
def test_not_a_json_object_is_refused(raw: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode(Health, raw)


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (State, {"ts": 1, "seq": 1, "online": "yes"}),
        (State, {"ts": 1, "seq": 1}),  # online is required
        (State, {"ts": 1, "seq": 1, "online": True, "health_interval_s": 0}),
        (State, {"ts": 1, "seq": 1, "online": True, "agent_version": "x" * 129}),
        (Ack, {"ts": 1, "seq": 1, "ranges": [[0, 3]]}),
        (Ack, {"ts": 1, "seq": 1, "ranges": [[1, 2, 3]]}),
        (Ack, {"ts": 1, "seq": 1, "watermark": 5}),
        (Detections, {"ts": 1, "seq": 1, "camera": "cam1", "interval_ms": 0}),
        (Detections, {"ts": 1, "seq": 1, "camera": "cam1", "interval_ms": 1,
                      "max_score": {"person": 1.5}}),
        (Detections, {"ts": 1, "seq": 1, "camera": "cam1", "interval_ms": 1,
                      "counts": {"person": -1}}),
        (Event, {"ts": 1, "seq": 1, "id": "e1", "camera": "cam1", "kind": "explosion"}),
        (Event, {"ts": 1, "seq": 1, "id": "E 1", "camera": "cam1", "kind": "crowd"}),
        (Event, {"ts": 1, "seq": 1, "id": "e1", "camera": "cam1", "kind": "crowd",
                 "status": "maybe"}),
    ],
)
def test_other_models_refuse_invalid_bodies(model: type[msgspec.Struct],
                                            body: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode(model, json.dumps(body).encode())


def test_event_kinds_are_exported() -> None:
    assert "crowd" in payloads.EVENT_KINDS and "camera_down" in payloads.EVENT_KINDS


@pytest.mark.parametrize(
    ("seqs", "ranges"),
    [
        ([], []),
        ([5], [(5, 5)]),
        ([1, 2, 3, 7], [(1, 3), (7, 7)]),
        ([7, 3, 1, 2], [(1, 3), (7, 7)]),  # unsorted
        ([1, 1, 2, 2, 3], [(1, 3)]),  # duplicates
        ({10, 12, 11, 20, 21, 30}, [(10, 12), (20, 21), (30, 30)]),
        ([1, 3, 5], [(1, 1), (3, 3), (5, 5)]),
        ([2**53 - 1, 2**53], [(2**53 - 1, 2**53)]),
    ],
)
def test_to_ranges(seqs: list[int] | set[int], ranges: list[tuple[int, int]]) -> None:
    assert to_ranges(seqs) == ranges


def test_to_ranges_feeds_an_ack_that_round_trips() -> None:
    ack = Ack(ts=1, seq=1, ranges=to_ranges([4, 1, 2, 3, 9]))
    assert decode(Ack, encode(ack)).ranges == [(1, 4), (9, 9)]
