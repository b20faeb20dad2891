"""Desired configuration against real processes: Mosquitto, ``dcor-hub ingest`` and
``dcor-agent run``. Refusals are reported and change nothing; a SIGKILL during an apply
leaves the old or the new configuration, never a mix."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcor_wire.canonical import canonical_json
from dcor_wire.payloads import MAX_CONFIG_BYTES
from dcor_wire.signing import verify
from hub.localservices import InfluxProcess, MosquittoProcess, wait_until
from tests.config.docs import envelope, tamper, write_keys
from tests.config.kit import ConfigHub, cheap_camera, desired_topic, publish

pytestmark = pytest.mark.integration


@pytest.fixture
def hub(tmp_path: Path, mosquitto: MosquittoProcess, influxd: InfluxProcess,
        influx_db: str) -> Iterator[ConfigHub]:
    h = ConfigHub(tmp_path / "hub", mosquitto.port, influxd.url, influx_db)
    h.start_ingest()
    try:
        yield h
    finally:
        h.stop()


def test_refused_documents_are_reported_and_the_last_good_stays(hub: ConfigHub,
                                                                device_id: str) -> None:
    agent = hub.enroll(device_id).start()
    hub.wait_online([device_id])
    key, port, topic = hub.key, hub.mqtt_port, desired_topic(device_id)
    publish(port, topic, envelope(key, device_id, 2, {"health": {"interval": "0.7s"}},
                                  settle_s=0.3))
    hub.wait_report(device_id, status="applied", version=2)
    other_key, _, _ = write_keys(hub.root / "intruder")
    good3 = envelope(key, device_id, 3, {"health": {"interval": "2s"}})
    cases = [
        ("unsigned", canonical_json(json.loads(good3)["doc"])),
        ("bad_signature", tamper(good3, health={"interval": "9s"})),
        ("wrong_key", envelope(other_key, device_id, 4, {"health": {"interval": "3s"}})),
        ("other_device", envelope(key, "someone-else-01", 5, {})),
        ("stale_version", envelope(key, device_id, 1, {"health": {"interval": "4s"}})),
        ("oversized", b'{"pad":"' + b"x" * (MAX_CONFIG_BYTES + 10) + b'"}'),
    ]
    for reason, body in cases:
        publish(port, topic, body)
        rep = hub.wait_report(device_id, status="rejected", reason=reason)
        assert rep.version == 2, (reason, rep.version)  # the last good stays in force
    assert hub.active_version(device_id) == 2
    dev = hub.device(device_id)
    assert dev is not None and dev.config_version == 2 and dev.health_interval_s == 0.7
    # Restarted, the box runs version 2 and does not take the retained oversized message
    # for anything else.
    agent.terminate()
    agent.start()
    wait_until(lambda: (d := hub.device(device_id)) is not None and d.presence == "online"
               and d.config_version == 2, 20, message="back online on version 2")
    assert agent.proc is not None and agent.proc.poll() is None


def _doc(hub: ConfigHub, device_id: str, version: int, variant: int) -> bytes:
    """Two complete configurations that differ in every stage the box restarts."""
    cams = [cheap_camera("a", seed=1)] if variant == 0 else [cheap_camera("b", seed=2),
                                                             cheap_camera("c", seed=3)]
    interval = "0.6s" if variant == 0 else "0.9s"
    return envelope(hub.key, device_id, version, {"health": {"interval": interval},
                                                   "cameras": cams},
                    grace_s=8, settle_s=0.5)


EXPECTED = {0: (0.6, ["a"]), 1: (0.9, ["b", "c"])}


def test_sigkill_during_apply_leaves_old_or_new_never_a_mix(hub: ConfigHub,
                                                           device_id: str) -> None:
    agent = hub.enroll(device_id, cameras=[cheap_camera("a", seed=1)]).start()
    hub.wait_online([device_id])
    topic = desired_topic(device_id)
    publish(hub.mqtt_port, topic, _doc(hub, device_id, 1, 0))
    hub.wait_report(device_id, status="applied", version=1)
    versions = {1: 0}
    killed_on_trial = 0
    for version, delay in enumerate((0.0, 0.08, 0.25, 0.6), start=2):
        versions[version] = variant = version % 2
        publish(hub.mqtt_port, topic, _doc(hub, device_id, version, variant))
        time.sleep(delay)
        agent.kill()
        in_force = hub.active_version(device_id)
        assert in_force in (version - 1, version)
        # The file names one whole signed document, exactly as the hub signed it.
        stored = json.loads((hub.state_dir(device_id) / "active.json").read_text())
        verify(stored["envelope"], hub.key.public_key())
        killed_on_trial += not stored["confirmed"]
        agent.start()
        # The box runs exactly what active.json names (resuming the trial if one was on),
        # and ends on the newest document: the retained one is delivered again.
        hub.wait_report(device_id, status="applied", version=version, timeout=30)
        interval, cams = EXPECTED[versions[version]]

        def consistent(interval: float = interval, cams: list[str] = cams,
                       version: int = version) -> bool:
            d = hub.device(device_id)
            return d is not None and d.config_version == version and \
                d.health_interval_s == interval and d.last_health is not None and \
                sorted(d.last_health.get("cameras", {})) == cams

        wait_until(consistent, 20, message=f"version {version} fully in force")
    assert killed_on_trial, "no kill landed inside an apply: the test proved nothing"
    assert "Traceback" not in agent.log_path.read_text(errors="replace")
