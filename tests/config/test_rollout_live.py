"""Rollouts end to end: ``dcor-hub rollout run`` and ``dcor-hub ingest`` processes, real
Mosquitto, real agents. A broken camera URL in the first wave aborts the rollout and the
canaries (real ``dcor-agent run`` processes) return to the last good; fifty agents (one
process, real Agent objects) take a change in three waves."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bench.synth import device_ids
from hub.localservices import InfluxProcess, MosquittoProcess, wait_until
from hub.localservices.process import free_port
from hub.rollout import views
from hub.rollout.tables import DesiredConfigRow, RolloutRow
from hub.security.audit import AuditLog
from tests.config.kit import ConfigHub, cheap_camera, reap

pytestmark = pytest.mark.integration

FAST = {"thresholds": {"report_timeout_s": 25, "bake_s": 1.0},
        "apply": {"grace_s": 4, "settle_s": 0.5}}


@pytest.fixture
def hub(tmp_path: Path, mosquitto: MosquittoProcess, influxd: InfluxProcess,
        influx_db: str) -> Iterator[ConfigHub]:
    h = ConfigHub(tmp_path / "hub", mosquitto.port, influxd.url, influx_db)
    h.start_ingest()
    h.start_engine()
    try:
        yield h
    finally:
        h.stop()


def rollout_status(hub: ConfigHub, rid: str) -> RolloutRow | None:
    with hub.registry.session() as s:
        return s.get(RolloutRow, rid)


def wait_finished(hub: ConfigHub, rid: str, timeout: float) -> RolloutRow:
    try:
        return wait_until(lambda: (r := rollout_status(hub, rid)) is not None and r.status in
                          ("completed", "aborted") and r, timeout, message=f"rollout {rid}")
    except TimeoutError as exc:
        detail = views.rollout_detail(hub.registry, rid)
        raise AssertionError(f"{exc}\n{json.dumps(detail, indent=1)[:3000]}\n"
                             f"{hub.log('engine')}") from exc


def desired(hub: ConfigHub, device_id: str) -> DesiredConfigRow | None:
    with hub.registry.session() as s:
        return s.scalars(select(DesiredConfigRow).where(DesiredConfigRow.device_id == device_id)
                         .order_by(DesiredConfigRow.version.desc())).first()


def streaming(hub: ConfigHub, dev: str) -> bool:
    d = hub.device(dev)
    cam = ((d.last_health or {}).get("cameras") or {}).get("cam1") if d else None
    # "streaming" is the default state, left out on the wire.
    return bool(cam) and cam.get("state", "streaming") == "streaming" and cam["fps"] > 0


def test_a_broken_camera_url_aborts_in_the_first_wave_and_canaries_go_back(
        hub: ConfigHub) -> None:
    ids = [f"pole-{i}-{hub.root.parent.name[-6:]}".lower().replace("_", "-") for i in range(4)]
    for dev in ids:
        hub.enroll(dev, cameras=[cheap_camera("cam1")]).start()
    hub.wait_online(ids)
    # A good change first: it becomes every box's last good configuration.
    hub.svc.set_override("kelurahan", "Kemiri Muka", {"health": {"interval": "0.8s"}},
                         author="citra")
    good = hub.svc.create_rollout({"targets": {"kecamatan": ["Beji"]},
                                   "waves": {"canary": 2, "percentages": [100]}, **FAST},
                                  author="citra")
    assert wait_finished(hub, good["id"], 40).status == "completed"
    good_digest = {dev: desired(hub, dev).digest for dev in ids}
    # Now a camera on a port nobody listens on.
    dead = f"rtsp://127.0.0.1:{free_port()}/stream"
    broken = {"id": "cam1", "type": "opencv", "url": dead, "video": {"enabled": False},
              "snapshots": {"periodic_interval": 0}, "health": {"down": "1s"}}
    hub.svc.set_override("kelurahan", "Kemiri Muka", {
        "health": {"interval": "0.8s"}, "cameras": [broken]}, author="citra")
    bad = hub.svc.create_rollout({"targets": {"kecamatan": ["Beji"]},
                                  "waves": {"canary": 2, "percentages": [100]}, **FAST},
                                 author="citra")
    done = wait_finished(hub, bad["id"], 40)
    assert done.status == "aborted" and done.auto_aborted
    # The first canary to give the camera up is enough (1 of 2 is over 10 %).
    assert "of 2 devices failed" in done.reason and "no_frames" in done.reason
    detail = views.rollout_detail(hub.registry, bad["id"])
    canaries = [d["device_id"] for d in detail["waves_detail"][0]["devices"]]
    others = [d["device_id"] for d in detail["waves_detail"][1]["devices"]]
    assert len(canaries) == 2 and len(others) == 2 and detail["wave"] == 0
    for dev in canaries:
        back = desired(hub, dev)
        assert back.kind == "revert" and back.digest == good_digest[dev]
        rep = hub.wait_report(dev, status="applied", version=back.version)
        assert rep.digest == good_digest[dev]
        # The canary runs its last good again: the synthetic camera streams.
        wait_until(lambda dev=dev: streaming(hub, dev), 15, message=f"{dev} streaming again")
    for dev in others:  # never touched by the broken rollout
        assert desired(hub, dev).digest == good_digest[dev]
        assert hub.report(dev).digest == good_digest[dev]
    assert not views.drift(hub.registry)
    actions = [e.action for e in AuditLog(hub.registry).query()]
    assert actions.count("config_push") >= 2 and "config_rollout_abort" in actions


def test_fifty_agents_take_a_change_in_three_waves(hub: ConfigHub) -> None:
    ids = [f"pool-{i:02d}-{hub.root.parent.name[-6:]}".lower().replace("_", "-")
           for i in range(50)]
    configs = []
    for i, dev in enumerate(ids):
        hub.register(dev, kelurahan=f"Kel {i % 5}")
        configs.append(hub.agent_config(dev))
        (hub.root / dev).mkdir(parents=True, exist_ok=True)
    spec = hub.root / "pool.json"
    spec.write_text(json.dumps(configs))
    log = open(hub.root / "pool.log", "ab")  # noqa: SIM115 - handed to the child
    pool = subprocess.Popen([sys.executable, "-m", "tests.config.agentpool", str(spec)],
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        hub.wait_online(ids, timeout=40)
        hub.svc.set_override("kecamatan", "Beji", {"health": {"interval": "1s"}},
                             author="citra")
        out = hub.svc.create_rollout({"targets": {"all": True},
                                      "waves": {"canary": 5, "percentages": [50, 100]},
                                      **FAST}, author="citra")
        assert out["waves"] == [5, 20, 25]
        done = wait_finished(hub, out["id"], 90)
        assert done.status == "completed", done.reason
        detail = views.rollout_detail(hub.registry, out["id"])
        assert [w["counts"] for w in detail["waves_detail"]] == \
            [{"ok": 5}, {"ok": 20}, {"ok": 25}]
        for dev in ids:
            rep = hub.report(dev)
            assert rep is not None and rep.status == "applied" and \
                rep.version == desired(hub, dev).version
        wait_until(lambda: all((d := hub.device(dev)) is not None and
                               d.health_interval_s == 1.0 for dev in ids), 10,
                   message="every box on the new health interval")
        assert not views.drift(hub.registry)
    finally:
        reap(pool, 20)


def test_simulated_boxes_take_a_change(hub: ConfigHub) -> None:
    """dcor-sim (the demo's city) answers pushes, so a rollout over it completes."""
    prefix = "sim" + hub.root.parent.name[-4:].lower().replace("_", "-")
    ids = device_ids(6, prefix)
    for dev in ids:
        hub.register(dev)
    log = open(hub.root / "sim.log", "ab")  # noqa: SIM115 - handed to the child
    sim = subprocess.Popen(
        [sys.executable, "-m", "bench.fleet", "--devices", "6", "--prefix", prefix,
         "--port", str(hub.mqtt_port), "--health-interval", "0.5", "--outbox-dir",
         str(hub.root / "sim"), "--hub-key", str(hub.pub)],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        hub.wait_online(ids, timeout=30)
        out = hub.svc.create_rollout({"targets": {"all": True},
                                      "waves": {"canary": 1, "percentages": [100]}, **FAST},
                                     author="citra")
        done = wait_finished(hub, out["id"], 60)
        assert done.status == "completed", done.reason
        for dev in ids:
            rep = hub.report(dev)
            assert rep is not None and rep.status == "applied" and \
                rep.version == desired(hub, dev).version
        assert not views.drift(hub.registry)
    finally:
        reap(sim, 20)
