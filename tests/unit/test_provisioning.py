"""Profiles rendering, enrollment (registry + bundle) and the ``dcor-provision`` command."""

from __future__ import annotations

import copy
import stat
from pathlib import Path

import pytest
import yaml

from dcor_wire.topics import TopicError
from edge_agent.config import ConfigError, load_config
from hub.registry.db import open_registry
from hub.registry.models import Device, Site
from provisioning.cli import main
from provisioning.enroll import (
    BundleExistsError,
    EnrollRequest,
    build_bundle,
    enroll,
    render_agent_config,
)
from provisioning.profiles import ProfileError, list_profiles, merge, render_profile
from provisioning.registry_ops import DeviceSpec, EnrollError, SiteSpec, register_devices

SITE = SiteSpec(id="beji-margonda", kecamatan="Beji", kelurahan="Kemiri Muka",
                name="Tiang CCTV Jl. Margonda Raya", lat=-6.3733, lon=106.8321)


def request(**changes) -> EnrollRequest:
    base = dict(device_id="beji-margonda-01", site=SITE, profile="rpi4-cctv",
                broker_host="10.20.0.1", broker_port=1883,
                agent_data_dir=Path("/var/lib/dcor-agent"))
    return EnrollRequest(**{**base, **changes})


@pytest.fixture
def registry(tmp_path):
    reg = open_registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    yield reg
    reg.close()


# --- profiles ----------------------------------------------------------------------------

def test_list_profiles_leaves_out_the_common_base():
    assert list_profiles() == ["jetson-orin-nano", "kelurahan-office", "rpi4-cctv",
                               "rpi5-cctv"]


def test_render_profile_resolves_extends_and_merges_overrides_deeply():
    doc = render_profile("rpi4-cctv", {"health": {"interval": "2s"}, "device_id": "x-01"})
    assert "extends" not in doc
    assert doc["profile"] == "rpi4-cctv" and doc["hardware"] == "rpi4"
    assert doc["health"] == {"interval": "2s", "disk_path": "/"}  # disk_path from common
    assert doc["outbox"]["max_bytes"] == "256MiB"  # the thin file wins over common
    assert doc["outbox"]["ack_timeout"] == "30s"  # inherited
    assert doc["device_id"] == "x-01"


def test_render_profile_changes_neither_its_inputs_nor_later_results():
    overrides = {"outbox": {"window": 8}}
    kept = copy.deepcopy(overrides)
    first = render_profile("rpi5-cctv", overrides)
    first["outbox"]["window"] = 999
    assert overrides == kept
    assert render_profile("rpi5-cctv")["outbox"]["window"] == 64


def test_merge_replaces_lists_and_scalars_whole():
    assert merge({"a": [1, 2], "b": {"c": 1, "d": 2}}, {"a": [3], "b": {"d": 5}}) == {
        "a": [3], "b": {"c": 1, "d": 5}}
    assert merge({"a": {"b": 1}}, {"a": 7}) == {"a": 7}


@pytest.mark.parametrize("name", ["rpi9", "common", "../profiles/rpi4-cctv", "/etc/passwd",
                                  "RPI4-CCTV"])
def test_unknown_profile_lists_the_available_ones(name):
    with pytest.raises(ProfileError) as err:
        render_profile(name)
    msg = str(err.value)
    assert f"unknown profile {name!r}" in msg
    assert "jetson-orin-nano, kelurahan-office, rpi4-cctv, rpi5-cctv" in msg


def test_missing_profile_folder_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ProfileError, match="DCOR_PROFILES_DIR"):
        list_profiles(tmp_path / "nope")


def test_profiles_dir_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "tiny.yaml").write_text("profile: tiny\nhardware: x86\n")
    (tmp_path / "common.yaml").write_text("{}\n")
    monkeypatch.setenv("DCOR_PROFILES_DIR", str(tmp_path))
    assert list_profiles() == ["tiny"]
    assert render_profile("tiny") == {"profile": "tiny", "hardware": "x86"}


# --- the agent config an enrollment renders ---------------------------------------------------

def test_rendered_config_adds_identity_broker_and_outbox_path():
    doc, cfg = render_agent_config(request(agent_data_dir=Path("/data/dcor")))
    assert list(doc)[:3] == ["device_id", "profile", "hardware"]
    assert "extends" not in doc
    assert (cfg.device_id, cfg.profile, cfg.hardware) == ("beji-margonda-01", "rpi4-cctv",
                                                          "rpi4")
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("10.20.0.1", 1883)
    assert cfg.outbox.path == Path("/data/dcor/outbox.sqlite")
    assert cfg.health.interval == 15.0  # the rpi4 profile's


def test_hardware_and_overrides_from_the_request_win():
    _, cfg = render_agent_config(request(hardware="rpi4-8gb",
                                         overrides={"health": {"interval": "2s"}}))
    assert cfg.hardware == "rpi4-8gb"
    assert cfg.health.interval == 2.0


def test_invalid_values_are_refused_before_anything_is_written():
    with pytest.raises(TopicError, match="invalid device id"):
        render_agent_config(request(device_id="Beji/01"))
    with pytest.raises(ConfigError) as err:
        render_agent_config(request(broker_port=70000))
    assert err.value.problems == [
        "(enrollment):0: mqtt.port: Input should be less than or equal to 65535"]
    with pytest.raises(ConfigError) as err:
        render_agent_config(request(overrides={"health": {"interval": "soon"}}))
    assert "health.interval" in err.value.problems[0]


# --- enroll: registry and bundle ----------------------------------------------------------

def test_enroll_registers_the_device_and_writes_a_private_bundle(registry, tmp_path):
    out = tmp_path / "bundle"
    bundle = enroll(registry, request(), out)
    with registry.session() as s:
        dev = s.get(Device, "beji-margonda-01")
        site = s.get(Site, "beji-margonda")
        assert dev is not None and site is not None
        assert (dev.site_id, dev.profile, dev.hardware, dev.status) == (
            "beji-margonda", "rpi4-cctv", "rpi4", "enrolled")
        assert (site.kecamatan, site.kelurahan, site.lat, site.lon) == (
            "Beji", "Kemiri Muka", -6.3733, 106.8321)
    path = out / "agent.yaml"
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in out.iterdir()] == ["agent.yaml"]  # no temp files left behind
    assert load_config(path) == bundle.config  # what the box will load is what was checked
    assert "extends" not in yaml.safe_load(path.read_text())


def test_invalid_request_changes_nothing(registry, tmp_path):
    with pytest.raises(ProfileError):
        enroll(registry, request(profile="rpi9"), tmp_path / "b")
    with registry.session() as s:
        assert s.get(Device, "beji-margonda-01") is None
    assert not (tmp_path / "b").exists()


def test_register_devices_writes_all_in_one_go_or_nothing(registry):
    good = [DeviceSpec(f"beji-pole-{i:02d}", SITE, "rpi4-cctv", "rpi4") for i in range(1, 4)]
    with pytest.raises(TopicError):
        register_devices(registry, [*good, DeviceSpec("Bad/Id", SITE, "rpi4-cctv")])
    with pytest.raises(EnrollError, match="kecamatan"):
        register_devices(registry, [*good, DeviceSpec("beji-pole-09", SiteSpec("x", "", "y"),
                                                      "rpi4-cctv")])
    with registry.session() as s:
        assert s.get(Device, "beji-pole-01") is None
    register_devices(registry, good)  # several devices sharing one new site
    with registry.session() as s:
        assert [s.get(Device, d.device_id).site_id for d in good] == ["beji-margonda"] * 3
        assert s.get(Site, "beji-margonda").lat == -6.3733


def test_existing_bundle_is_replaced_only_with_force(registry, tmp_path):
    enroll(registry, request(), tmp_path)
    with pytest.raises(BundleExistsError, match="--force"):
        enroll(registry, request(profile="rpi5-cctv"), tmp_path)
    with registry.session() as s:
        assert s.get(Device, "beji-margonda-01").profile == "rpi4-cctv"  # untouched
    enroll(registry, request(profile="rpi5-cctv"), tmp_path, force=True)
    assert load_config(tmp_path / "agent.yaml").profile == "rpi5-cctv"


def test_bundle_header_names_device_and_profile():
    text = build_bundle(request()).files["agent.yaml"]
    assert text.startswith("# dcor-agent configuration of beji-margonda-01")
    assert "from profile rpi4-cctv" in text


# --- dcor-provision -------------------------------------------------------------------------

def _hub_config(tmp_path: Path) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(f"data_dir: {tmp_path / 'hub'}\n")
    return path


def _enroll_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["enroll", "--device-id", "limo-raya-01", "--site", "limo-raya",
            "--kecamatan", "Limo", "--kelurahan", "Limo", "--lat", "-6.369", "--lon", "106.781",
            "--hub-config", str(_hub_config(tmp_path)), "--broker-host", "10.20.0.1",
            "--broker-port", "8883", "--out", str(tmp_path / "out"), *extra]


def test_cli_enroll_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DCOR_HUB_CONFIG", raising=False)
    assert main(_enroll_args(tmp_path, "--profile", "kelurahan-office",
                             "--agent-data-dir", "/srv/dcor")) == 0
    out = capsys.readouterr().out
    assert out.startswith("enrolled limo-raya-01 at site limo-raya (Limo / Limo), "
                          "profile kelurahan-office, hardware x86")
    assert str(tmp_path / "out" / "agent.yaml") in out
    cfg = load_config(tmp_path / "out" / "agent.yaml")
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("10.20.0.1", 8883)
    assert cfg.outbox.path == Path("/srv/dcor/outbox.sqlite")
    reg = open_registry(f"sqlite:///{tmp_path / 'hub' / 'registry.sqlite'}", create=False)
    try:
        with reg.session() as s:
            assert s.get(Device, "limo-raya-01").profile == "kelurahan-office"
    finally:
        reg.close()


def test_cli_unknown_profile_exits_2_listing_profiles(tmp_path, capsys):
    assert main(_enroll_args(tmp_path, "--profile", "pi3")) == 2
    err = capsys.readouterr().err
    assert "unknown profile 'pi3'; available: jetson-orin-nano, kelurahan-office" in err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_half_a_position(tmp_path, capsys):
    args = _enroll_args(tmp_path, "--profile", "rpi4-cctv")
    i = args.index("--lon")
    del args[i:i + 2]
    assert main(args) == 2
    assert "--lat and --lon" in capsys.readouterr().err


def test_cli_lists_profiles(capsys):
    assert main(["profiles"]) == 0
    assert capsys.readouterr().out.split() == list_profiles()
