"""Simulated boxes (dcor-sim, the demo's city) answer pushed configurations as boxes do:
checked with the hub's key, reported applied or rejected, a retained copy not reported twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.simdevice import SimConfig, SimDevice
from dcor_wire import topics
from edge_agent.remoteconf.keys import load_hub_key
from tests.config.docs import envelope, tamper, write_keys

DEVICE = "sim-00001"


def _reports(box: SimDevice) -> list[dict[str, Any]]:
    rows = box._outbox.fetch(100, set())
    return [json.loads(r.payload) for r in rows
            if r.topic == topics.device_topic(DEVICE, topics.CONFIG_REPORTED)]


def test_a_simulated_box_reports_what_a_box_would(tmp_path: Path) -> None:
    key, _, pub = write_keys(tmp_path / "keys")
    box = SimDevice(DEVICE, tmp_path / "outbox.sqlite", SimConfig(hub_key=load_hub_key(pub)))
    try:
        first = envelope(key, DEVICE, 1, {"health": {"interval": "5s"}}, rollout="r1")
        box.take_desired(first)
        box.take_desired(first)  # the retained copy on a reconnect: nothing new
        box.take_desired(tamper(envelope(key, DEVICE, 2, {}), evil=True))
        box.take_desired(envelope(key, "sim-00002", 3, {}))
        box.take_desired(envelope(key, DEVICE, 1, {"health": {"interval": "9s"}}))
        got = [(r["status"], r["version"], r["desired_version"], r.get("reason", ""),
                r.get("rollout", "")) for r in _reports(box)]
        assert got == [("applied", 1, 1, "", "r1"),
                       ("rejected", 1, 2, "bad_signature", ""),
                       ("rejected", 1, 3, "other_device", ""),
                       ("rejected", 1, 1, "stale_version", "")]
        assert box.config[0] == 1
    finally:
        box.close()


def test_without_the_key_pushes_are_ignored(tmp_path: Path) -> None:
    key, _, _ = write_keys(tmp_path / "keys")
    box = SimDevice(DEVICE, tmp_path / "outbox.sqlite", SimConfig())
    try:
        box.take_desired(envelope(key, DEVICE, 1, {}))
        assert _reports(box) == [] and box.config == (0, "")
    finally:
        box.close()
