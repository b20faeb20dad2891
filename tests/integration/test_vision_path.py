"""An agent replaying real street video through the real model, end to end to the hub:
detections and events in InfluxDB, snapshots on the hub's disk, a clip uploaded on command."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import select

from dcor_wire import topics
from hub.localservices import InfluxProcess, MosquittoProcess, wait_until
from hub.registry.models import MediaItem
from tests.integration.fleetkit import Fleet

pytestmark = pytest.mark.integration

ASSETS = Path(__file__).resolve().parents[2].parent / "shared" / "assets"
VIDEO = ASSETS / "video" / "vtest_first250.avi"
MODEL = ASSETS / "models" / "detect.tflite"
needs_assets = pytest.mark.skipif(not VIDEO.exists() or not MODEL.exists(),
                                  reason=f"test assets not found at {ASSETS}")


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: MosquittoProcess, influxd: InfluxProcess,
          influx_db: str) -> Iterator[Fleet]:
    f = Fleet(tmp_path / "fleet", mosquitto.port, influxd.url, influx_db)
    try:
        yield f
    finally:
        f.stop()


def camera_agent(fleet: Fleet, device_id: str) -> Any:
    cam = {"id": "path", "type": "opencv", "file": str(VIDEO), "loop": True,
           "interval": "2s", "zones": [{"id": "walkway", "points": [[0, 0], [1, 0], [1, 1],
                                                                    [0, 1]],
                                        "enter_cooldown": "1s"}],
           "snapshots": {"periodic_interval": "2s"},
           "video": {"segment": "2s", "pre_roll": "1s", "post_roll": "1s"}}
    det = {"model": str(MODEL), "labels": str(ASSETS / "models" / "labelmap.txt"),
           "threads": 1, "min_rate": 2, "max_rate": 4}
    agent = fleet.enroll(device_id)
    cfg = agent.config_path.read_text()
    import yaml

    data = yaml.safe_load(cfg)
    data.update(cameras=[cam], detector=det, data_dir=str(agent.outbox_path.parent / "data"))
    agent.config_path.write_text(yaml.safe_dump(data))
    return agent


def query(fleet: Fleet, q: str) -> list[list[Any]]:
    try:
        series = fleet.influx.query(q)
    except Exception:
        return []
    return series[0]["values"] if series else []


def ask(port: int, device_id: str, name: str, request: dict[str, Any],
        timeout: float = 30.0) -> dict[str, Any]:
    """MQTT 5 request/response, as the hub sends a command."""
    got: dict[str, Any] = {}
    reply_topic = topics.device_topic(device_id, topics.REPLY)
    corr = uuid.uuid4().bytes
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if getattr(msg.properties, "CorrelationData", None) == corr:
            got.update(json.loads(msg.payload))

    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        c.subscribe(reply_topic, qos=1)
        time.sleep(0.3)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = reply_topic
        props.CorrelationData = corr
        c.publish(topics.cmd_topic(device_id, name), json.dumps(request), qos=1,
                  properties=props)
        wait_until(lambda: got, timeout=timeout, message=f"reply to {name}")
    finally:
        c.loop_stop()
        c.disconnect()
    return got


@needs_assets
def test_video_replay_reaches_the_hub(fleet: Fleet) -> None:
    dev = "cam-vtest-001"
    agent = camera_agent(fleet, dev).start()
    fleet.start_hub()
    q = f"SELECT count FROM object_counts WHERE device = '{dev}' AND \"class\" = 'person'"
    wait_until(lambda: any(v[1] > 0 for v in query(fleet, q)), timeout=60, interval=1,
               message="person counts > 0")
    wait_until(lambda: query(fleet, f"SELECT id FROM events WHERE device = '{dev}'"),
               timeout=30, interval=1, message="events stored")
    with fleet.registry.session() as s:
        snaps = s.scalars(select(MediaItem).where(MediaItem.device_id == dev)).all()
        files = [fleet.root / "hub" / "media" / m.path for m in snaps]
    assert snaps and all(f.read_bytes()[:2] == b"\xff\xd8" for f in files)

    # A clip of 4 s from the ring, asked for over MQTT 5 request/response.
    wait_until(lambda: len(list((agent.outbox_path.parent / "data").rglob("*.ts"))) >= 5,
               timeout=30, message="ring segments")
    now = int(time.time() * 1000)
    reply = ask(fleet.mqtt_port, dev, "upload_clip",
                {"camera": "path", "start_ts": now - 7000, "end_ts": now - 3000})
    assert reply["ok"], reply

    def clip_stored() -> Path | None:
        with fleet.registry.session() as s:
            row = s.scalars(select(MediaItem).where(MediaItem.kind == "clip")).first()
            return fleet.root / "hub" / "media" / row.path if row else None

    clip = wait_until(clip_stored, timeout=30, message="clip assembled at the hub")
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        frames = [f.time for f in container.decode(stream)]
    duration = frames[-1] - frames[0] + 0.1  # 10 fps
    assert abs(duration - 4.0) <= 0.4, duration

    bad = ask(fleet.mqtt_port, dev, "upload_clip", {"camera": "nope", "start_ts": 1,
                                                    "end_ts": 2})
    assert not bad["ok"] and "unknown camera" in bad["error"]
