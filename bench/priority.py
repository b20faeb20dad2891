"""Priority on a slow link: 10,000 readings queued on a 2 KB/s uplink, then an alarm.

The agent runs in this process (the real ``Agent``: outbox, uplink); the hub, broker and
influxd are the lab's. The alarm counts as delivered when InfluxDB holds its point.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.agenthost import Ledger, Producer, put
from bench.faultlab import Lab, LabSpec
from bench.faultproxy import Fault
from dcor_wire import topics
from edge_agent.app import Agent
from edge_agent.config import validate_config
from edge_agent.telemetry import Priority
from hub.influx import InfluxClient, InfluxConfig, InfluxError, quote_string

BACKLOG = 10_000
LINK = Fault.slow(0.2, 0.05, 2048)
TARGET_S = 10.0


def _stored(client: InfluxClient, device: str, seq: int) -> bool:
    try:
        return bool(client.query(f"SELECT seq FROM health WHERE device = {quote_string(device)}"
                                 f" AND seq = {seq}"))
    except InfluxError:
        return False


def _alarm_latency(agent: Agent, p: Producer, ledger: Ledger, client: InfluxClient,
                   timeout: float = 40.0) -> float:
    before = agent.outbox.last_seq()
    t0 = time.monotonic()
    put(p, ledger, alarm=True)
    seq = agent.outbox.last_seq()
    assert seq > before, "the alarm was not stored in the outbox"
    while time.monotonic() - t0 < timeout:
        if _stored(client, agent.cfg.device_id, seq):
            return time.monotonic() - t0
        time.sleep(0.1)
    return float("inf")


def run_priority(root: Path, length: str) -> dict[str, Any]:
    started = time.monotonic()
    lab = Lab(root, LabSpec(agents=1, hosts=0, rate=0.0, keepalive_s=30))
    alarms = 2 if length == "quick" else 5
    latencies: list[float] = []
    drained = False
    agent: Agent | None = None
    try:
        lab.start()
        assert lab.proxy is not None
        device = lab.devices[0]
        cfg = validate_config({**lab.agent_config(0, device)})
        agent = Agent(cfg)
        ledger = Ledger(str(lab.root / "ledger-0.txt"))
        p = Producer(agent, 0.0, 0.0, 0, Priority.DETECTIONS)
        fill_started = time.monotonic()
        for i in range(BACKLOG):
            # Stamped as if produced over the last BACKLOG/10 seconds (10 readings/s): two
            # readings in one millisecond would be one InfluxDB point.
            p.clock_offset_ms = -(BACKLOG - i) * 100
            put(p, ledger, alarm=False)
        p.clock_offset_ms = 0
        fill_s = time.monotonic() - fill_started
        lab.proxy.set(LINK)
        agent.start()
        time.sleep(5.0)  # the backlog is flowing and the link is full
        client = InfluxClient(InfluxConfig(lab.influxd.url, lab.db, timeout_s=10))
        try:
            for _ in range(alarms):
                latencies.append(_alarm_latency(agent, p, ledger, client))
                time.sleep(2.0)
        finally:
            client.close()
        backlog_left = agent.outbox.depth
        lab.proxy.pass_()
        drained = lab.quiesce(timeout=120.0)
        agent.stop()
        agent = None
        ledger.close()
        result = lab.finish()
    finally:
        if agent is not None:
            agent.stop()
        lab.close()
    result.pop("verdicts")
    worst = max(latencies) if latencies else float("inf")
    checks = {"alarm_within_10s": worst <= TARGET_S, "no_loss": result["lost"] == 0,
              "drained": drained, "no_crash": result["crashes"] == 0}
    return {**result, "scenario": "priority_slow_link", "backlog": BACKLOG,
            "link_bytes_per_s": LINK.bytes_per_s, "backlog_fill_s": round(fill_s, 1),
            "alarm_latency_s": [round(x, 2) for x in latencies],
            "backlog_left_when_measured": backlog_left, "drained": drained,
            "wall_s": round(time.monotonic() - started, 1), "checks": checks,
            "ok": all(checks.values()), "topic": topics.HEALTH}
