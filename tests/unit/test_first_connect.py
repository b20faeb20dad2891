"""The first connection after process start waits uniform(0, mqtt.first_connect_spread), so
boxes that boot together (a kelurahan's power comes back) do not connect in the same second;
an uplink rebuilt later (new broker settings) connects at once."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import pytest

from edge_agent.app import Agent
from edge_agent.config import ConfigError, validate_config
from edge_agent.outbox import Outbox
from edge_agent.uplink import Uplink, first_connect_delay
from hub.localservices import MosquittoProcess, wait_until
from hub.localservices.process import free_port


def _cfg(tmp_path: Path, port: int = 1, **mqtt: object):
    return validate_config({"device_id": "boot-01", "mqtt": {"port": port, **mqtt},
                            "outbox": {"path": str(tmp_path / "outbox.sqlite")},
                            "health": {"disk_path": str(tmp_path)},
                            "data_dir": str(tmp_path / "data")})


def test_the_spread_defaults_to_ten_seconds_and_accepts_durations(tmp_path: Path) -> None:
    assert _cfg(tmp_path).mqtt.first_connect_spread == 10.0
    assert _cfg(tmp_path, first_connect_spread="2500ms").mqtt.first_connect_spread == 2.5
    assert _cfg(tmp_path, first_connect_spread=0).mqtt.first_connect_spread == 0.0
    with pytest.raises(ConfigError, match=r"mqtt\.first_connect_spread"):
        _cfg(tmp_path, first_connect_spread="-1s")


@pytest.mark.parametrize(("spread", "rand", "expected"), [
    (10.0, 0.0, 0.0),
    (10.0, 0.5, 5.0),
    (10.0, 0.999, 9.99),
    (4.0, 0.25, 1.0),
    (0.0, 0.999, 0.0),  # 0: connect at once, whatever the draw
])
def test_delay_is_the_draw_times_the_spread(tmp_path: Path, spread: float, rand: float,
                                            expected: float) -> None:
    cfg = _cfg(tmp_path, first_connect_spread=spread)
    assert first_connect_delay(cfg, lambda: rand) == pytest.approx(expected)


def test_a_whole_kelurahan_booting_at_once_is_spread_below_a_fifth_per_second(
        tmp_path: Path) -> None:
    # 200 boxes powered up in the same instant, with the default spread: the issue's
    # criterion is that no second sees more than 20 % of them connect.
    cfg = _cfg(tmp_path)
    rng = random.Random(4)
    boot = 1_700_000_000.37  # any instant; seconds are counted on the wall clock
    per_second = Counter(int(boot + first_connect_delay(cfg, rng.random)) for _ in range(200))
    assert max(per_second.values()) / 200 <= 0.2
    assert len(per_second) >= 10


def test_only_the_agents_first_uplink_waits(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, first_connect_spread="8s")
    agent = Agent(cfg)
    try:
        assert 0.0 <= agent.uplink.start_delay <= 8.0
        # The uplink rebuilt when a pushed configuration changes broker settings.
        assert agent._new_uplink(cfg).start_delay == 0.0
    finally:
        agent.outbox.close()


def test_stop_during_the_wait_is_prompt_and_never_connects(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, port=free_port())
    outbox = Outbox(cfg.outbox.path, cfg.outbox.max_bytes)
    up = Uplink(cfg, outbox, lambda online: b"{}", start_delay=60.0)
    try:
        up.start()
        time.sleep(0.2)
        started = time.monotonic()
        up.stop(timeout=5)
        assert time.monotonic() - started < 2.0
        assert up.stats.connects == 0 and up.stats.last_error == ""  # never even tried
    finally:
        outbox.close()


@pytest.mark.integration
def test_the_first_connection_waits_the_delay(tmp_path: Path,
                                              mosquitto: MosquittoProcess) -> None:
    cfg = _cfg(tmp_path, port=mosquitto.port)
    outbox = Outbox(cfg.outbox.path, cfg.outbox.max_bytes)
    up = Uplink(cfg, outbox, lambda online: b"{}", start_delay=1.0)
    try:
        started = time.monotonic()
        up.start()
        time.sleep(0.5)
        assert not up.connected and up.stats.connects == 0
        wait_until(lambda: up.connected, timeout=10, message="the uplink connected")
        assert time.monotonic() - started >= 1.0
    finally:
        up.stop(timeout=5)
        outbox.close()
