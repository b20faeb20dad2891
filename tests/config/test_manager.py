"""The agent's configuration manager against an in-memory host: every refusal, the trial,
rollback, restarts during a trial, redelivery. Real signatures, files and threads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcor_wire.canonical import canonical_json
from dcor_wire.payloads import MAX_CONFIG_BYTES
from edge_agent.config import AgentConfig, validate_config
from edge_agent.remoteconf.gate import Probe
from edge_agent.remoteconf.keys import HubKeyError, load_hub_key
from edge_agent.remoteconf.manager import ConfigManager
from tests.config.docs import envelope, raw_envelope, tamper, write_keys
from tests.config.fakehost import FakeHost

DEV = "mgr-box-01"


@pytest.fixture
def setup(tmp_path: Path):
    key, _priv, pub = write_keys(tmp_path / "keys")
    local = validate_config({"device_id": DEV, "outbox": {"path": str(tmp_path / "ob.sqlite")},
                             "data_dir": str(tmp_path / "data"),
                             "hub_public_key_file": str(pub)})
    return key, local, tmp_path


def manager(local: AgentConfig, tmp_path: Path) -> ConfigManager:
    return ConfigManager(local, state_dir=tmp_path / "state",
                         public_key=load_hub_key(local.hub_public_key_file))


def started(local: AgentConfig, tmp_path: Path) -> tuple[ConfigManager, FakeHost]:
    m = manager(local, tmp_path)
    host = FakeHost(m.boot())
    m.start(host)
    return m, host


def test_a_good_document_is_applied_kept_and_reported(setup) -> None:
    key, local, tmp = setup
    m, host = started(local, tmp)
    try:
        m.offer(envelope(key, DEV, 3, {"health": {"interval": "2s"}}, settle_s=0))
        rep = host.wait_reports(1)[-1]
    finally:
        m.stop()
    assert rep["status"] == "applied" and rep["version"] == 3 and rep["desired_version"] == 3
    assert host.cfg.health.interval == 2.0 and host.cfg.device_id == DEV
    assert m.store.active().confirmed and m.store.good()["doc"]["version"] == 3


def _rejections(key, other_key):
    good = envelope(key, DEV, 5, {"health": {"interval": "3s"}})
    unsigned = canonical_json(json.loads(good)["doc"])
    return {
        "unsigned": unsigned,
        "bad_signature": tamper(good, metrics_port=9100),
        "wrong_key": envelope(other_key, DEV, 6, {"health": {"interval": "3s"}}),
        "other_device": envelope(key, "someone-else", 7, {}),
        "stale_version": envelope(key, DEV, 1, {"health": {"interval": "4s"}}),
        "oversized": b'{"pad":"' + b"x" * MAX_CONFIG_BYTES + b'"}',
        "invalid": envelope(key, DEV, 8, {"health": {"interval": "1ms"}}),
        "malformed": b"[1, 2",
    }


def test_every_refusal_is_reported_and_changes_nothing(setup) -> None:
    key, local, tmp = setup
    other, _, _ = write_keys(tmp / "other")
    m, host = started(local, tmp)
    try:
        m.offer(envelope(key, DEV, 2, {"health": {"interval": "2s"}}, settle_s=0))
        host.wait_reports(1)
        cases = _rejections(key, other)
        for n, (reason, body) in enumerate(cases.items(), start=2):
            m.handle(body)
            rep = host.wait_reports(n)[-1]
            assert (rep["status"], rep["reason"]) == ("rejected", reason), rep
            assert rep["version"] == 2  # the last good stays in force
    finally:
        m.stop()
    assert len(host.applied) == 1 and host.cfg.health.interval == 2.0
    assert m.store.active().envelope["doc"]["version"] == 2


def test_pinned_keys_are_refused(setup) -> None:
    key, local, tmp = setup
    m, host = started(local, tmp)
    try:
        m.handle(raw_envelope(key, DEV, 4, {"mqtt": {"host": "evil.example"}}))
        rep = host.wait_reports(1)[-1]
    finally:
        m.stop()
    assert rep["reason"] == "invalid" and "mqtt.host" in rep["error"]


def test_without_a_hub_key_nothing_is_accepted(setup) -> None:
    key, local, tmp = setup
    m = ConfigManager(local, state_dir=tmp / "state", public_key=None)
    host = FakeHost(m.boot())
    m.start(host)
    try:
        m.handle(envelope(key, DEV, 1, {}))
    finally:
        m.stop()
    assert host.reports[-1]["reason"] == "no_hub_key" and not host.applied


def test_a_redelivered_document_is_not_applied_or_reported_twice(setup) -> None:
    key, local, tmp = setup
    m, host = started(local, tmp)
    body = envelope(key, DEV, 2, {"health": {"interval": "2s"}}, settle_s=0)
    bad = envelope(key, DEV, 3, {"health": {"interval": "1ms"}})
    try:
        m.offer(body)
        host.wait_reports(1)
        m.handle(body)
        m.handle(bad)
        m.handle(bad)
    finally:
        m.stop()
    assert [r["status"] for r in host.reports] == ["applied", "rejected"]


def test_an_unhealthy_configuration_is_given_back(setup) -> None:
    key, local, tmp = setup
    m, host = started(local, tmp)
    try:
        m.offer(envelope(key, DEV, 2, {"health": {"interval": "2s"}}, settle_s=0))
        host.wait_reports(1)
        host.probe_value = Probe(uplink_connected=True, cameras={"cam1": "no_frames"})
        m.offer(envelope(key, DEV, 3, {"health": {"interval": "5s"}}, grace_s=1))
        rep = host.wait_reports(2)[-1]
    finally:
        m.stop()
    assert rep["status"] == "rolled_back" and rep["reason"] == "health"
    assert "capture: camera cam1 no_frames" in rep["error"]
    assert (rep["version"], rep["desired_version"]) == (2, 3)
    assert host.cfg.health.interval == 2.0  # the last good is back in force
    assert m.store.active().envelope["doc"]["version"] == 2


def test_a_failing_apply_is_given_back_at_once(setup) -> None:
    key, local, tmp = setup
    m, host = started(local, tmp)
    try:
        host.fail_next = True
        m.offer(envelope(key, DEV, 2, {"health": {"interval": "2s"}}))
        rep = host.wait_reports(1)[-1]
    finally:
        m.stop()
    assert (rep["status"], rep["reason"], rep["version"]) == ("rolled_back", "apply_failed", 0)
    assert m.store.active() is None  # agent.yaml alone again


def test_same_content_under_a_new_version_is_adopted_without_restarts(setup) -> None:
    key, local, tmp = setup
    m, host = started(local, tmp)
    try:
        m.offer(envelope(key, DEV, 2, {"health": {"interval": "2s"}}, settle_s=0))
        host.wait_reports(1)
        m.handle(envelope(key, DEV, 9, {"health": {"interval": "2s"}}, kind="revert"))
    finally:
        m.stop()
    assert host.reports[-1]["status"] == "applied" and host.reports[-1]["version"] == 9
    assert len(host.applied) == 1


def test_a_restart_during_the_trial_resumes_it_once_then_rolls_back(setup) -> None:
    key, local, tmp = setup
    m = manager(local, tmp)
    m.boot()
    m.store.begin_trial(json.loads(envelope(key, DEV, 4, {"health": {"interval": "7s"}})))
    # First restart: the document on trial is run and watched again.
    again = manager(local, tmp)
    assert again.boot().health.interval == 7.0 and again.version == 4
    # Second restart within the same trial: the last good (agent.yaml) comes back.
    third = manager(local, tmp)
    cfg = third.boot()
    assert cfg.health.interval == local.health.interval and third.version == 0
    host = FakeHost(cfg)
    third.start(host)
    third.stop()
    assert host.reports[0]["status"] == "rolled_back" and host.reports[0]["reason"] == "boot"


def test_a_key_others_can_write_is_refused(setup) -> None:
    _key, local, _tmp = setup
    local.hub_public_key_file.chmod(0o666)
    with pytest.raises(HubKeyError, match="writable"):
        load_hub_key(local.hub_public_key_file)
