"""hub.ingest.validate: (topic, bytes) -> points or a counted reason; device id from the topic."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from dcor_wire import payloads
from dcor_wire.media import MAX_CLIP_CHUNK_BYTES, MAX_SNAPSHOT_BYTES
from dcor_wire.payloads import CameraHealth, Health, State
from hub.ingest import validate as v
from hub.ingest.clockwindow import ClockWindow
from hub.ingest.validate import Accepted, Rejected, SiteTags, Validator

DEV = "cam-001"
SITES = {DEV: SiteTags("Pancoran Mas", "Depok Jaya"), "bare-01": SiteTags()}
HEALTH_TOPIC = f"dcor/v1/{DEV}/health"
STATE_TOPIC = f"dcor/v1/{DEV}/state"


# The clock window (hub.ingest.clockwindow) is tested in tests/faults: here any time goes.
ANY_TIME = ClockWindow(max_behind_s=1e15, max_ahead_s=1e15, floor_ms=0)


@pytest.fixture
def validator() -> Validator:
    return Validator(SITES.get, clock_window=ANY_TIME)


def health_body(**over: Any) -> bytes:
    body: dict[str, Any] = {"v": 1, "ts": 1_700_000_000_000, "seq": 42, "uptime_s": 100.0}
    body.update(over)
    return json.dumps(body).encode()


def rejected(result: v.Result) -> Rejected:
    assert isinstance(result, Rejected), result
    return result


def accepted(result: v.Result) -> Accepted:
    assert isinstance(result, Accepted), result
    return result


def fields_of(lp: str) -> str:
    """The field set of one line (between the unescaped spaces)."""
    parts = re.split(r"(?<!\\) ", lp)
    assert len(parts) == 3, lp
    return parts[1]


# --- every reason -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "data", "reason", "device"),
    [
        ("other/v1/cam-001/health", health_body(), v.BAD_TOPIC, None),
        ("dcor/v1/Cam-001/health", health_body(), v.BAD_TOPIC, None),
        ("dcor/v1/cam-001/nonsense", health_body(), v.BAD_TOPIC, None),
        ("dcor/v1/cam-001", health_body(), v.BAD_TOPIC, None),
        (HEALTH_TOPIC, b" " * (payloads.MAX_JSON_BYTES + 1), v.OVERSIZED, DEV),
        ("dcor/v1/stranger-9/health", health_body(), v.UNKNOWN_DEVICE, "stranger-9"),
        (HEALTH_TOPIC, b"{not json", v.BAD_JSON, DEV),
        (HEALTH_TOPIC, b"", v.BAD_JSON, DEV),
        (HEALTH_TOPIC, b"\xff\xfe\x00", v.BAD_JSON, DEV),
        (HEALTH_TOPIC, health_body() + b"trailing", v.BAD_JSON, DEV),
        (HEALTH_TOPIC, health_body(cpu_pct=-1), v.SCHEMA, DEV),
        (HEALTH_TOPIC, health_body(cpu_pct="high"), v.SCHEMA, DEV),
        (HEALTH_TOPIC, health_body(extra=1), v.SCHEMA, DEV),
        (HEALTH_TOPIC, b"[]", v.SCHEMA, DEV),
        (HEALTH_TOPIC, b'{"ts":1,"seq":2,"uptime_s":NaN}', v.BAD_JSON, DEV),
        (HEALTH_TOPIC, health_body(device_id="cam-002"), v.DEVICE_MISMATCH, DEV),
        (HEALTH_TOPIC, health_body(device="cam-002"), v.DEVICE_MISMATCH, DEV),
        (STATE_TOPIC, b'{"ts":1,"seq":1,"online":true,"device_id":"cam-666"}',
         v.DEVICE_MISMATCH, DEV),
        (f"dcor/v1/{DEV}/config/reported", b"{}", v.SCHEMA, DEV),
        (f"dcor/v1/{DEV}/config/desired", b"{}", v.UNSUPPORTED_KIND, DEV),
        (f"dcor/v1/{DEV}/detections", b'{"ts":1,"seq":2}', v.SCHEMA, DEV),
        (f"dcor/v1/{DEV}/events", b'{"ts":1,"seq":2,"id":"e","camera":"c","kind":"fire"}',
         v.SCHEMA, DEV),
        # media: the JSON size limit does not apply, their own does; meta is in properties
        (f"dcor/v1/{DEV}/snapshot/cam1", b"\xff\xd8" + b"\0" * MAX_SNAPSHOT_BYTES, v.OVERSIZED,
         DEV),
        (f"dcor/v1/{DEV}/clip/cam1", b"\0" * (MAX_CLIP_CHUNK_BYTES + 1), v.OVERSIZED, DEV),
        (f"dcor/v1/{DEV}/snapshot/cam1", b"\xff\xd8jpeg", v.SCHEMA, DEV),  # no properties
        ("dcor/v1/stranger-9/snapshot/cam1", b"\xff\xd8jpeg", v.UNKNOWN_DEVICE, "stranger-9"),
    ],
)
def test_reasons(validator: Validator, topic: str, data: bytes, reason: str,
                 device: str | None) -> None:
    r = rejected(validator.check(topic, data))
    assert (r.reason, r.device_id) == (reason, device)
    assert r.reason in v.REASONS
    assert r.detail


def test_exactly_max_bytes_is_not_oversized(validator: Validator) -> None:
    body = health_body()
    padded = body[:-1] + b" " * (payloads.MAX_JSON_BYTES - len(body)) + b"}"
    assert len(padded) == payloads.MAX_JSON_BYTES
    accepted(validator.check(HEALTH_TOPIC, padded))


def test_body_naming_its_own_device_is_a_schema_error_not_a_mismatch(
        validator: Validator) -> None:
    r = rejected(validator.check(HEALTH_TOPIC, health_body(device_id=DEV)))
    assert (r.reason, r.seq) == (v.SCHEMA, 42)


@pytest.mark.parametrize(
    ("seq", "recovered"),
    [(42, 42), (1, 1), (2**53 - 1, 2**53 - 1), (0, None), (-3, None), (2**53, None),
     (True, None), ("42", None), (4.0, None), (None, None)],
)
def test_seq_recovered_on_a_schema_rejection(validator: Validator, seq: Any,
                                             recovered: int | None) -> None:
    # The seq lets the hub ack (as rejected) a row the agent would otherwise resend forever.
    r = rejected(validator.check(HEALTH_TOPIC, health_body(seq=seq, cpu_pct=500)))
    assert (r.reason, r.seq) == (v.SCHEMA, recovered)


def test_an_internal_error_refuses_instead_of_raising() -> None:
    def broken(dev: str) -> SiteTags | None:
        raise RuntimeError("registry gone")

    r = rejected(Validator(broken).check(HEALTH_TOPIC, health_body()))
    assert r.reason == v.INTERNAL and "registry gone" in r.detail


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"ts":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"seq":7,"deep":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"ts":1,"seq":7,"uptime_s":1,"cameras":{"c":' + b'{"a":' * 5000 + b"1"
        + b"}" * 5000 + b"}}",
        b"[" * 5000,  # and never closed
    ],
)
def test_deep_nesting_is_refused_without_recursion_error(validator: Validator,
                                                         data: bytes) -> None:
    r = rejected(validator.check(HEALTH_TOPIC, data))
    assert r.reason in (v.SCHEMA, v.BAD_JSON)
    assert "Recursion" not in r.detail


# --- accepted -----------------------------------------------------------------------------


def test_health_becomes_lines_tagged_with_device_and_site(validator: Validator) -> None:
    h = Health(ts=1_700_000_000_000, seq=42, uptime_s=100.0, cpu_pct=12.5, temp_c=55.0,
               throttled_now=False, outbox_depth=3)
    a = accepted(validator.check(HEALTH_TOPIC, payloads.encode(h)))
    assert (a.device_id, a.kind, a.seq) == (DEV, "health", 42)
    assert a.payload == h
    assert len(a.lines) == 1
    lp = a.lines[0]
    assert lp.startswith("health,device=cam-001,kecamatan=Pancoran\\ Mas,kelurahan=Depok\\ Jaya ")
    assert lp.endswith(" 1700000000000")
    fields = fields_of(lp).split(",")
    assert "seq=42i" in fields  # seq is an integer field, never a tag
    assert "cpu_pct=12.5" in fields and "temp_c=55.0" in fields
    assert "throttled_now=false" in fields and "outbox_depth=3i" in fields
    # Absent sources stay absent in InfluxDB too; v and ts are not fields.
    names = {f.split("=")[0] for f in fields}
    assert not names & {"mem_pct", "disk_pct", "clock_synced", "v", "ts", "cameras"}


def test_camera_health_lines(validator: Validator) -> None:
    h = Health(ts=5, seq=9, uptime_s=1.0, cameras={
        "front": CameraHealth(state="streaming", fps=12.5, dropped=2, inference_ms=40.5),
        "back": CameraHealth(state="no_frames"),
    })
    a = accepted(validator.check(HEALTH_TOPIC, payloads.encode(h)))
    assert len(a.lines) == 3
    cams = {re.search(r",camera=([^, ]+)", lp).group(1): lp  # type: ignore[union-attr]
            for lp in a.lines[1:]}
    assert set(cams) == {"front", "back"}
    for name, lp in cams.items():
        assert lp.startswith("camera_health,camera=" + name + ",device=cam-001,kecamatan=")
        assert "seq=9i" in fields_of(lp).split(",")
        assert lp.endswith(" 5")
    assert set(fields_of(cams["front"]).split(",")) == {
        'state="streaming"', "fps=12.5", "dropped=2i", "reconnects=0i", "inference_ms=40.5",
        "seq=9i"}
    assert "inference_ms" not in cams["back"]  # unknown, not 0
    assert 'state="no_frames"' in cams["back"]


def test_empty_site_tags_are_left_out(validator: Validator) -> None:
    a = accepted(validator.check("dcor/v1/bare-01/health", health_body()))
    assert a.lines[0].startswith("health,device=bare-01 ")


@pytest.mark.parametrize("online", [True, False])
def test_state_becomes_a_presence_line_without_seq(validator: Validator, online: bool) -> None:
    s = State(ts=77, seq=12, online=online, agent_version="0.1.0", boot_id="b1",
              config_version=3)
    a = accepted(validator.check(STATE_TOPIC, payloads.encode(s)))
    assert (a.kind, a.seq) == ("state", None)  # presence is not acknowledged by seq
    assert len(a.lines) == 1
    lp = a.lines[0]
    assert lp.startswith("presence,device=cam-001,kecamatan=Pancoran\\ Mas,")
    fields = dict(f.split("=", 1) for f in fields_of(lp).split(","))
    assert "seq" not in fields
    assert fields["online"] == ("true" if online else "false")
    assert fields["last_seq"] == "12i"
    assert fields["agent_version"] == '"0.1.0"' and fields["config_version"] == "3i"
    assert lp.endswith(" 77")


def test_device_id_comes_from_the_topic(validator: Validator) -> None:
    other = "bare-01"
    a = accepted(validator.check(f"dcor/v1/{other}/health", health_body()))
    assert a.device_id == other and "device=bare-01" in a.lines[0]


def test_json_kinds_are_pluggable() -> None:
    val = Validator(
        SITES.get,
        clock_window=ANY_TIME,
        json_kinds={"detections": (
            payloads.Detections,
            lambda dev, site, d: [f"det,device={dev} frames={d.frames}i 1"],
        )},
    )
    body = payloads.encode(payloads.Detections(ts=1, seq=3, camera="c1", interval_ms=1000,
                                               frames=25))
    a = accepted(val.check(f"dcor/v1/{DEV}/detections", body))
    assert (a.seq, a.lines) == (3, [f"det,device={DEV} frames=25i 1"])
    assert rejected(val.check(HEALTH_TOPIC, health_body())).reason == v.UNSUPPORTED_KIND
