"""Rendering from profile and override layers, override history, the model catalogue and
starting rollouts (real SQLite registry, real profile files)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dcor_wire.configdoc import content_digest
from hub.registry.db import open_registry
from hub.rollout.render import CatalogModel, choose_variant
from hub.rollout.service import ConfigPushError, ConfigService
from hub.settings import HubSettings
from provisioning.registry_ops import SiteSpec, register_device

PROFILE = """
extends: common.yaml
profile: test-box
hardware: rpi4
health:
  interval: 10s
"""
COMMON = """
outbox:
  path: /var/lib/dcor-agent/outbox.sqlite
  window: 32
"""


@pytest.fixture
def svc(tmp_path: Path) -> ConfigService:
    prof = tmp_path / "profiles"
    prof.mkdir()
    (prof / "test-box.yaml").write_text(textwrap.dedent(PROFILE))
    (prof / "common.yaml").write_text(textwrap.dedent(COMMON))
    reg = open_registry(f"sqlite:///{tmp_path / 'reg.sqlite'}")
    for dev, kec, kel, hw in [("beji-01", "Beji", "Kemiri Muka", "rpi4"),
                              ("beji-02", "Beji", "Tanah Baru", "rpi4"),
                              ("cim-01", "Cimanggis", "Mekarsari", "jetson")]:
        register_device(reg, dev, SiteSpec(f"site-{dev}", kec, kel), "test-box", hw)
    settings = HubSettings(data_dir=tmp_path / "hub",
                           config_model_base_url="http://hub.local:8080")
    return ConfigService(reg, settings, profiles_dir=prof)


def rendered(svc: ConfigService, dev: str) -> dict:
    with svc.registry.session() as s:
        from hub.rollout.fleetdata import device_infos

        info = device_infos(s)[dev]
    return svc.renderer()(info).as_json()


def test_one_pass_renders_each_device_on_its_own(svc: ConfigService) -> None:
    """One renderer for a whole rollout: a device's hardware must not leak into the next
    device of the same profile, and each digest must match its own content."""
    with svc.registry.session() as s:
        from hub.rollout.fleetdata import device_infos

        infos = device_infos(s)
    render = svc.renderer()
    out = {dev: render(infos[dev]).as_json() for dev in ("beji-01", "cim-01", "beji-02")}
    assert {dev: r["config"]["hardware"] for dev, r in out.items()} == {
        "beji-01": "rpi4", "cim-01": "jetson", "beji-02": "rpi4"}
    for r in out.values():
        assert r["digest"] == content_digest(r["config"], r["models"])


def test_layers_apply_in_order_and_enrollment_keys_are_dropped(svc: ConfigService) -> None:
    svc.set_override("kecamatan", "Beji", {"health": {"interval": "20s"}, "metrics_port": 9100},
                     author="citra")
    svc.set_override("kelurahan", "Kemiri Muka", {"health": {"interval": "30s"}},
                     author="citra")
    svc.set_override("device", "beji-01", {"metrics_port": 9200}, author="citra")
    one, two = rendered(svc, "beji-01"), rendered(svc, "beji-02")
    assert one["config"]["health"]["interval"] == "30s" and one["config"]["metrics_port"] == 9200
    assert two["config"]["health"]["interval"] == "20s" and two["config"]["metrics_port"] == 9100
    assert "path" not in one["config"]["outbox"] and one["config"]["outbox"]["window"] == 32
    assert one["digest"].startswith("sha256:") and one["digest"] != two["digest"]
    assert rendered(svc, "cim-01")["config"]["health"]["interval"] == "10s"


def test_override_history_keeps_every_edit_and_removal(svc: ConfigService) -> None:
    svc.set_override("site", "site-beji-01", {"metrics_port": 1}, author="a", note="first")
    svc.set_override("site", "site-beji-01", {"metrics_port": 2}, author="b")
    svc.set_override("site", "site-beji-01", None, author="c", note="undo")
    hist = svc.override_history("site", "site-beji-01")
    assert [(h["author"], h["data"]) for h in hist] == [
        ("c", None), ("b", {"metrics_port": 2}), ("a", {"metrics_port": 1})]
    assert rendered(svc, "beji-01")["config"].get("metrics_port") is None


@pytest.mark.parametrize(("scope", "key", "data", "msg"), [
    ("device", "beji-01", {"mqtt": {"host": "x"}}, "enrollment"),
    ("device", "beji-01", {"health": {"interval": "1ms"}}, "health.interval"),
    ("device", "beji-01", {"no_such_key": 1}, "no_such_key"),
    ("kelurahan", "Atlantis", {"metrics_port": 1}, "no enrolled device"),
    ("planet", "x", {}, "unknown scope"),
])
def test_bad_overrides_are_refused(svc: ConfigService, scope, key, data, msg) -> None:
    with pytest.raises(ConfigPushError) as info:
        svc.set_override(scope, key, data, author="a")
    assert msg in str(info.value) + " ".join(info.value.problems)
    assert svc.override_history() == []


def test_models_by_hardware_variant(svc: ConfigService, tmp_path: Path) -> None:
    generic, jet = tmp_path / "m.tflite", tmp_path / "m-trt.tflite"
    generic.write_bytes(b"generic model")
    jet.write_bytes(b"jetson model")
    a = svc.add_model("ssd", generic, author="citra")
    b = svc.add_model("ssd", jet, hardware="jetson", author="citra")
    svc.set_override("kecamatan", "Beji", {"models": {"det": "ssd"},
                                            "detector": {"model": "model://det"}}, author="c")
    svc.set_override("kecamatan", "Cimanggis", {"models": {"det": "ssd"},
                                                 "detector": {"model": "model://det"}},
                     author="c")
    pi, jetson = rendered(svc, "beji-01"), rendered(svc, "cim-01")
    assert pi["models"]["det"] == {"url": f"http://hub.local:8080/models/{a['sha256']}",
                                   "sha256": a["sha256"], "size": len(b"generic model")}
    assert jetson["models"]["det"]["sha256"] == b["sha256"]
    assert svc.model_path(a["sha256"]).read_bytes() == b"generic model"
    assert svc.model_path("0" * 64) is None


def test_variant_choice() -> None:
    cat = [CatalogModel("m", "", "a" * 64, 1), CatalogModel("m", "rpi5", "b" * 64, 1)]
    assert choose_variant(cat, "m", "rpi5").sha256 == "b" * 64
    assert choose_variant(cat, "m", "rpi4").sha256 == "a" * 64
    assert choose_variant(cat, "other", "rpi4") is None


def test_rollout_creation_checks_targets_and_overlap(svc: ConfigService) -> None:
    out = svc.create_rollout({"targets": {"kecamatan": ["Beji"]},
                              "waves": {"canary": 1, "percentages": [100]}}, author="citra")
    assert out["devices"] == 2 and out["waves"] == [1, 1]
    with pytest.raises(ConfigPushError) as clash:
        svc.create_rollout({"targets": {"devices": ["beji-02"]}}, author="citra")
    assert clash.value.status == 409
    with pytest.raises(ConfigPushError) as unknown:
        svc.create_rollout({"targets": {"devices": ["nope-01"]}}, author="citra")
    assert unknown.value.status == 404
    with pytest.raises(ConfigPushError, match="invalid rollout"):
        svc.create_rollout({"targets": {"all": True}, "waves": {"percentages": [50]}},
                           author="citra")
    assert svc.steer(out["id"], "pause", author="citra")["status"] == "paused"
    with pytest.raises(ConfigPushError):
        svc.steer(out["id"], "pause", author="citra")
    assert svc.steer(out["id"], "abort", author="citra")["status"] == "aborting"


def test_the_signing_key_must_be_private(tmp_path: Path) -> None:
    from hub.rollout.keys import SigningKeyError, load_signing_key, signing_key_path
    from tests.config.docs import write_keys

    key, priv, pub = write_keys(tmp_path / "sec")
    settings = HubSettings(data_dir=tmp_path, security_dir=tmp_path / "sec")
    assert signing_key_path(settings) == priv
    assert load_signing_key(priv).public_key().public_bytes_raw() == \
        key.public_key().public_bytes_raw()
    priv.chmod(0o640)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        load_signing_key(priv)
    with pytest.raises(SigningKeyError, match="not a PEM private key"):
        pub.chmod(0o600)
        load_signing_key(pub)
    with pytest.raises(SigningKeyError, match="init-hub"):
        load_signing_key(tmp_path / "missing.key")
