"""The configuration API and admin page, and model files fetched by the agent's own code from
the hub's web server (real HTTP on a free loopback port, Range requests, resume)."""

from __future__ import annotations

import hashlib
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from dcor_wire.configdoc import ModelSpec
from edge_agent.remoteconf.fetch import ModelFetchError, fetch_model
from hub.influx import InfluxClient, InfluxConfig
from hub.localservices.process import free_port
from hub.registry.db import Registry, open_registry
from hub.rollout.service import ConfigService
from hub.security.audit import AuditLog
from hub.settings import HubSettings
from hub.web import create_app, make_web_server
from provisioning.registry_ops import SiteSpec, register_device

PROFILE = "profile: test-box\nhardware: x86\nhealth:\n  interval: 10s\n"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Flask, Registry, HubSettings]]:
    prof = tmp_path / "profiles"
    prof.mkdir()
    (prof / "test-box.yaml").write_text(textwrap.dedent(PROFILE))
    reg = open_registry(f"sqlite:///{tmp_path / 'reg.sqlite'}")
    for i in range(4):
        register_device(reg, f"web-box-{i}", SiteSpec(f"s{i}", "Beji", "Kemiri Muka"),
                        "test-box", "x86")
    port = free_port()
    settings = HubSettings(data_dir=tmp_path / "hub", web_port=port,
                           config_model_base_url=f"http://127.0.0.1:{port}")
    influx = InfluxClient(InfluxConfig(url=f"http://127.0.0.1:{free_port()}", database="x"))
    app = create_app(settings, registry=reg, influx=influx,
                     test_config={"TESTING": True, "DCOR_PROFILES_DIR": prof})
    yield app, reg, settings
    influx.close()
    reg.close()


def test_overrides_rollouts_and_steering_through_the_api(env) -> None:
    app, reg, _ = env
    c = app.test_client()
    r = c.put("/api/v1/config/overrides/kelurahan/Kemiri Muka",
              json={"data": {"health": {"interval": "5s"}}, "note": "faster"})
    assert r.status_code == 200, r.json
    bad = c.put("/api/v1/config/overrides/device/web-box-0",
                json={"data": {"mqtt": {"host": "elsewhere"}}})
    assert bad.status_code == 400 and "enrollment" in bad.json["error"]["message"]
    assert [h["note"] for h in c.get("/api/v1/config/overrides").json] == ["faster"]

    started = c.post("/api/v1/rollouts", json={
        "targets": {"kecamatan": ["Beji"]}, "waves": {"canary": 1, "percentages": [50, 100]},
        "note": "faster health"})
    assert started.status_code == 201, started.json
    rid = started.json["id"]
    assert started.json["waves"] == [1, 1, 2]
    clash = c.post("/api/v1/rollouts", json={"targets": {"all": True}})
    assert clash.status_code == 409
    detail = c.get(f"/api/v1/rollouts/{rid}").json
    assert [len(w["devices"]) for w in detail["waves_detail"]] == [1, 1, 2]
    assert detail["status"] == "running" and detail["wave"] == -1
    assert c.post(f"/api/v1/rollouts/{rid}/pause", json={}).json["status"] == "paused"
    assert c.post(f"/api/v1/rollouts/{rid}/pause", json={}).status_code == 409
    assert c.post(f"/api/v1/rollouts/{rid}/abort", json={"reason": "wrong change"}).json[
        "status"] == "aborting"
    assert c.get("/api/v1/rollouts").json[0]["reason"] == "wrong change"
    assert c.get("/api/v1/rollouts/nope").status_code == 404
    devices = c.get("/api/v1/config/devices").json
    assert len(devices) == 4 and all(d["drift"] == "" for d in devices)
    actions = [e.action for e in AuditLog(reg).query()]
    for action in ("config_override", "config_rollout_start", "config_rollout_pause",
                   "config_rollout_abort"):
        assert action in actions


def test_bodies_that_do_not_fit_are_refused_and_change_nothing(env) -> None:
    """A note or reason that is no text, or too long, was coerced or cut and stored."""
    app, _, _ = env
    c = app.test_client()
    url = "/api/v1/config/overrides/kelurahan/Kemiri Muka"
    for note in (5, ["x"], "x" * 301):
        r = c.put(url, json={"data": {"health": {"interval": "5s"}}, "note": note})
        assert r.status_code == 400 and "'note'" in r.json["error"]["message"], r.json
    assert c.get("/api/v1/config/overrides").json == []
    rid = c.post("/api/v1/rollouts", json={"targets": {"all": True}}).json["id"]
    for body in ([1], {"reason": 5}, {"reason": {"why": "x"}}):
        r = c.post(f"/api/v1/rollouts/{rid}/abort", json=body)
        assert r.status_code == 400 and "'reason'" in r.json["error"]["message"], r.json
    assert c.get(f"/api/v1/rollouts/{rid}").json["status"] == "running"
    # No body at all still works (no reason), also when it says it is JSON.
    assert c.post(f"/api/v1/rollouts/{rid}/pause",
                  headers={"Content-Type": "application/json"}).json["status"] == "paused"


def test_the_admin_page_in_both_languages(env) -> None:
    app, _, _ = env
    c = app.test_client()
    c.post("/api/v1/rollouts", json={"targets": {"all": True}})
    page = c.get("/admin/config").get_data(as_text=True)
    assert "Peluncuran yang berjalan" in page and "Gelombang" in page and "web-box-3" in page
    assert "<td>Tidak diketahui</td>" in page and "<td>unknown</td>" not in page  # never seen
    english = c.get("/admin/config?lang=en").get_data(as_text=True)
    assert "Rollouts in progress" in english and "Abort and roll back" in english


@pytest.fixture
def served(env) -> Iterator[tuple[ConfigService, HubSettings]]:
    app, reg, settings = env
    server = make_web_server(settings, app)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True)
    t.start()
    yield ConfigService(reg, settings), settings
    server.shutdown()
    server.server_close()


def test_a_model_is_fetched_resumed_and_verified(served, tmp_path: Path) -> None:
    svc, settings = served
    blob = bytes(range(256)) * 4000  # ~1 MB
    src = tmp_path / "model.tflite"
    src.write_bytes(blob)
    item = svc.add_model("ssd", src, author="t")
    spec = ModelSpec(url=f"{settings.config_model_base_url}/models/{item['sha256']}",
                     sha256=item["sha256"], size=len(blob))
    box = tmp_path / "box-models"
    box.mkdir()
    # An earlier download stopped after 300 kB: only the rest is asked for.
    (box / f".{spec.sha256}.part").write_bytes(blob[:300_000])
    path = fetch_model(spec, box)
    assert path.read_bytes() == blob and not (box / f".{spec.sha256}.part").exists()
    # A corrupt partial file is thrown away and fetched again whole.
    path.unlink()
    (box / f".{spec.sha256}.part").write_bytes(b"\0" * 1000)
    assert hashlib.sha256(fetch_model(spec, box).read_bytes()).hexdigest() == spec.sha256
    # Wrong digest, unknown file, nobody listening: refused, nothing half kept in place.
    wrong = ModelSpec(url=spec.url, sha256="0" * 64, size=len(blob))
    with pytest.raises(ModelFetchError, match="does not have sha256"):
        fetch_model(wrong, box)
    missing = ModelSpec(url=f"{settings.config_model_base_url}/models/{'1' * 64}",
                        sha256="1" * 64, size=10)
    with pytest.raises(ModelFetchError, match="404"):
        fetch_model(missing, box)
    dead = ModelSpec(url=f"http://127.0.0.1:{free_port()}/models/x", sha256="2" * 64, size=5)
    with pytest.raises(ModelFetchError):
        fetch_model(dead, box, timeout=2)
    assert sorted(p.name for p in box.iterdir() if not p.name.startswith(".")) == \
        [spec.sha256]
