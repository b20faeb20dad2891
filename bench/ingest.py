"""Ingest throughput: the broker's own delivery rate against the hub's storing rate.

    python -m bench.ingest [--devices 200] [--messages 200000] [--workers 2]

M devices' telemetry (health and detections alternating: the real wire payloads, on each
device's own topics) is published at QoS 1 through a real Mosquitto by pre-encoded raw
publishers (``bench.rawpub``), so the publishing side is not what limits the run. The same
stream is sent twice:
1. to ``mosquitto_sub`` (QoS 1) alone: the rate it receives is the broker's limit here;
2. to ``dcor-hub ingest`` workers (one shared subscription when several): validation, line
   protocol, InfluxDB ``/write``, manual PUBACK only after the write, device acks, registry.
Every message must then be a point in InfluxDB. One JSON line: ``messages``,
``broker_msgs_per_s``, ``hub_msgs_per_s``, ``ratio``, ``lost`` and the CPU spent.
"""

from __future__ import annotations

import argparse
import io
import select
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, cast

from bench import rawpub, synth
from bench.common import ProcSampler, emit, machine, note
from bench.hubkit import HubWorkers, broker_config, enroll_bulk
from dcor_wire import topics
from hub.localservices import InfluxProcess, MosquittoProcess, find_binary, wait_until

SUB_FILTERS = (f"{topics.ROOT}/+/{topics.HEALTH}", f"{topics.ROOT}/+/{topics.DETECTIONS}")
PROBE_TOPIC = topics.device_topic("bench-probe", topics.HEALTH)
STEP_MS = 5_000


def stream(ids: list[str], per_device: int) -> list[tuple[str, bytes]]:
    """Every device's messages, interleaved as a fleet sends them: round by round, one
    message per device per round, health and detections alternating, 5 s apart, ending now
    (the hub quarantines points stamped far from its own clock)."""
    boxes = [synth.SyntheticBox(dev) for dev in ids]
    out: list[tuple[str, bytes]] = []
    t0_ms = int(time.time() * 1000) - (per_device + 1) * STEP_MS
    for seq in range(1, per_device + 1):
        ts = t0_ms + seq * STEP_MS
        for box in boxes:
            if seq % 2:
                out.append((topics.device_topic(box.device_id, topics.HEALTH),
                            synth.health_payload(box, seq, ts)))
            else:
                out.append((topics.device_topic(box.device_id, topics.DETECTIONS),
                            synth.detections_payload(box, seq, ts)))
    return out


class Publishers:
    """``n`` raw connections, each carrying the messages of its share of the devices."""

    def __init__(self, port: int, messages: list[tuple[str, bytes]], n: int) -> None:
        # A device's messages stay on one connection, so they keep their order.
        parts: list[list[tuple[str, bytes]]] = [[] for _ in range(n)]
        for topic, payload in messages:
            parts[hash(topic.split("/")[2]) % n].append((topic, payload))
        self._pubs = [rawpub.RawPublisher(port, f"bench-pub-{i}", rawpub.encode_all(part),
                                          len(part)) for i, part in enumerate(parts) if part]
        self.total = len(messages)

    def run(self) -> float:
        """Publish everything; returns the seconds until the last PUBACK."""
        threads = [threading.Thread(target=p.run, name=f"bench.pub:{i}", daemon=True)
                   for i, p in enumerate(self._pubs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(900)
        return max(p.seconds for p in self._pubs)


def receive_with_mosquitto_sub(port: int, count: int, publish: Publishers) -> float:
    """Seconds from the start of publishing until mosquitto_sub printed ``count`` messages."""
    cmd = [find_binary("mosquitto_sub"), "-V", "5", "-p", str(port), "-q", "1", "-F", "%t"]
    for f in SUB_FILTERS:
        cmd += ["-t", f]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = cast(io.BufferedReader, proc.stdout)
    try:
        # Ready when a probe published now comes back (polled, not slept for).
        wait_until(lambda: _probe(port) and select.select([out], [], [], 0.2)[0]
                   and out.read1(1 << 16), timeout=10, interval=0.0,
                   message="mosquitto_sub subscribed")
        seen = 0
        pub = threading.Thread(target=publish.run, name="bench.publish", daemon=True)
        t0 = time.monotonic()
        pub.start()
        while seen < count:
            chunk = out.read1(1 << 16)
            if not chunk:
                break
            seen += chunk.count(b"\n") - chunk.count(b"bench-probe")
        elapsed = time.monotonic() - t0
        pub.join(60)
    finally:
        proc.terminate()
        proc.wait(10)
        out.close()
    if seen < count:
        raise RuntimeError(f"mosquitto_sub received {seen} of {count}")
    return elapsed


def _probe(port: int) -> bool:
    rawpub.RawPublisher(port, "bench-probe", [rawpub.publish_packet(PROBE_TOPIC, b"{}", 1)],
                        1).run(10)
    return True


def store_with_hub(hub: HubWorkers, count: int, publish: Publishers,
                   timeout: float) -> tuple[float, dict[str, Any]]:
    """Seconds from the start of publishing until the workers say all ``count`` are stored
    (their counters are saved every 0.2 s), and the workers' CPU and memory."""
    hub.start()
    hub.wait_subscribed()
    sampler = ProcSampler(hub.pids, interval_s=0.5).start()
    pub = threading.Thread(target=publish.run, name="bench.publish", daemon=True)
    t0 = time.monotonic()
    pub.start()
    deadline = t0 + timeout
    while True:
        counters = hub.counters()
        done = sum(int(c.get("stored", 0)) + int(c.get("rejected", 0))
                   for c in counters.values())
        now = time.monotonic()
        if done >= count:
            break
        if now > deadline:
            raise RuntimeError(f"hub stored {done} of {count} in {timeout}s:\n{hub.log_tail()}")
        time.sleep(0.05)
    usage = sampler.stop()
    pub.join(60)
    return now - t0, {"hub_cpu_pct": usage.cpu_pct, "hub_rss_mb": usage.rss_mb_max,
                      "rejected": sum(int(c.get("rejected", 0)) for c in counters.values())}


def count_points(influx: InfluxProcess, db: str) -> int:
    total = 0
    for measurement in ("health", "detections"):
        res = influx.query(f'SELECT count("seq") FROM "{measurement}"', db=db, timeout=120)
        for series in res["results"][0].get("series", []):
            total += int(series["values"][0][1])
    return total


def run(devices: int, messages: int, workers: int, publishers: int) -> dict[str, Any]:
    per_device = max(1, messages // devices)
    messages = per_device * devices
    ids = synth.device_ids(devices)
    data = stream(ids, per_device)
    with tempfile.TemporaryDirectory(prefix="dcor-bench-ingest-") as tmp, \
            MosquittoProcess(data_dir=Path(tmp) / "mosquitto",
                             extra_config=broker_config(messages + 10_000)) as broker, \
            InfluxProcess(data_dir=Path(tmp) / "influxd") as influx:
        influx.create_database("bench")
        hub = HubWorkers(Path(tmp) / "hub", broker.port, influx.url, "bench", n=workers)
        try:
            enroll_bulk(hub.registry, ids)
            note(f"{messages} messages of {devices} devices -> mosquitto_sub")
            broker_s = receive_with_mosquitto_sub(
                broker.port, messages, Publishers(broker.port, data, publishers))
            note(f"mosquitto_sub: {messages / broker_s:.0f}/s; -> hub ({workers} workers)")
            sampler = ProcSampler([broker.pid or 0, influx.pid or 0], interval_s=0.5).start()
            hub_s, hub_figures = store_with_hub(
                hub, messages, Publishers(broker.port, data, publishers), timeout=900)
            services = sampler.stop()
            note(f"hub: {messages / hub_s:.0f}/s; counting points")
            stored = int(wait_until(lambda: count_points(influx, "bench") or None,
                                    timeout=60) or 0)
        finally:
            hub.close()
    broker_rate = messages / broker_s
    hub_rate = messages / hub_s
    return {
        "bench": "ingest", "messages": messages, "devices": devices, "workers": workers,
        "broker_msgs_per_s": round(broker_rate), "hub_msgs_per_s": round(hub_rate),
        "ratio": round(hub_rate / broker_rate, 3), "lost": messages - stored,
        **hub_figures, "broker_influxd_cpu_pct": services.cpu_pct, **machine(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--workers", type=int, default=2, help="dcor-hub ingest processes")
    p.add_argument("--publishers", type=int, default=2, help="pre-loading connections")
    a = p.parse_args(argv)
    emit(run(a.devices, a.messages, a.workers, a.publishers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
