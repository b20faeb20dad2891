"""Several real agents in one process, producing synthetic readings, with a ledger.

``python -m bench.agenthost SPEC.json`` runs every agent of the spec with the real
``edge_agent.app.Agent`` (outbox, uplink, presence) and a producer thread that puts readings at
each agent's rate instead of psutil samples. Every put that the outbox took is appended to the
ledger as ``device boot seq class`` (``seq`` R when the full outbox refused the new row), with
one ``write(2)`` per line, so the ledger survives a SIGKILL of this process.

Producing stops when the spec's ``stop_file`` exists (the agents keep draining their
outboxes; a file, not a signal, so a host that is still starting cannot miss or die of it);
SIGTERM stops the agents cleanly and exits.

Spec: ``{"ledger": path, "stop_file": path, "agents": [{"config": {AgentConfig}, "rate": 10.0,
"alarm_every_s": 0, "clock_offset_ms": 0, "low_class": "detections"}]}``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcor_wire import topics
from edge_agent.app import Agent
from edge_agent.config import validate_config
from edge_agent.telemetry import Priority


@dataclass
class Producer:
    agent: Agent
    rate: float
    alarm_every_s: float
    clock_offset_ms: int
    low_class: Priority
    next_at: float = 0.0
    next_alarm_at: float = 0.0
    count: int = 0
    last_ts: int = 0


def reading(p: Producer, alarm: bool) -> dict[str, Any]:
    p.count += 1
    # Strictly increasing: two readings of one device in one millisecond would be one
    # InfluxDB point (same measurement, tags and time), and the oracle would call it lost.
    p.last_ts = max(int(time.time() * 1000) + p.clock_offset_ms, p.last_ts + 1)
    return {"ts": p.last_ts, "uptime_s": float(p.count),
            "cpu_pct": round(random.uniform(5, 60), 1), "temp_c": 50.0 if not alarm else 90.0}


class Ledger:
    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._lock = threading.Lock()

    def add(self, device: str, boot: str, seq: int | str, cls: int) -> None:
        with self._lock:
            os.write(self._fd, f"{device} {boot} {seq} {cls}\n".encode())

    def close(self) -> None:
        os.close(self._fd)


def put(p: Producer, ledger: Ledger, alarm: bool) -> None:
    cls = Priority.ALARM if alarm else p.low_class
    seq = p.agent.put(topics.HEALTH, reading(p, alarm), cls)
    ledger.add(p.agent.cfg.device_id, p.agent.boot_id, seq if seq else "R", int(cls))


def produce(producers: list[Producer], ledger: Ledger, stop: threading.Event,
            stop_file: Path | None) -> None:
    now = time.monotonic()
    for p in producers:  # spread the fleet over the first second, not in lock step
        p.next_at = now + random.random() / max(p.rate, 0.1)
        p.next_alarm_at = now + p.alarm_every_s * random.random() if p.alarm_every_s else 1e18
    while not stop.is_set():
        if stop_file is not None and stop_file.exists():
            return
        now = time.monotonic()
        soonest = now + 0.5
        for p in producers:
            if p.rate > 0 and now >= p.next_at:
                put(p, ledger, alarm=False)
                # Behind schedule (a slow disk, a busy core): skip ahead rather than burst.
                p.next_at = max(p.next_at + 1.0 / p.rate, now - 1.0)
            if now >= p.next_alarm_at:
                put(p, ledger, alarm=True)
                p.next_alarm_at += p.alarm_every_s
            soonest = min(soonest, p.next_at, p.next_alarm_at)
        stop.wait(max(0.0, soonest - time.monotonic()))


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    spec = json.loads(Path(argv[0]).read_text())
    ledger = Ledger(spec["ledger"])
    producers = []
    for a in spec["agents"]:
        agent = Agent(validate_config(a["config"]))
        producers.append(Producer(agent, float(a.get("rate", 10.0)),
                                  float(a.get("alarm_every_s", 0)),
                                  int(a.get("clock_offset_ms", 0)),
                                  Priority[str(a.get("low_class", "detections")).upper()]))
    stop_producing = threading.Event()
    stop_all = threading.Event()
    stop_file = Path(spec["stop_file"]) if spec.get("stop_file") else None

    def on_term(*_: Any) -> None:
        stop_producing.set()
        stop_all.set()

    signal.signal(signal.SIGTERM, on_term)
    for p in producers:
        p.agent.start()
    worker = threading.Thread(target=produce,
                              args=(producers, ledger, stop_producing, stop_file),
                              name="dcor.bench.produce", daemon=True)
    worker.start()
    stop_all.wait()
    worker.join(5)
    stoppers = [threading.Thread(target=p.agent.stop, name=f"dcor.bench.stop:{i}")
                for i, p in enumerate(producers)]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join(20)
    ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
