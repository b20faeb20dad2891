"""Ingest throughput: the broker's own delivery rate against the hub's storing rate.

    python -m bench.ingest [--devices 200] [--messages 200000] [--workers 2]

M devices' telemetry (health and detections, the real wire payloads) is pre-loaded into a
real Mosquitto as a backlog for offline persistent sessions, so no publisher limits what is
measured. Then, in turn:
1. ``mosquitto_sub`` (QoS 1) drains its copy of the backlog: the broker's limit here;
2. ``dcor-hub ingest`` workers (one shared subscription when several) drain theirs:
   validation, line protocol, InfluxDB ``/write``, manual PUBACK, device acks, registry.
Every message must then be a point in InfluxDB. One JSON line: ``messages``,
``broker_msgs_per_s``, ``hub_msgs_per_s``, ``ratio``, ``lost`` and the CPU spent.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import synth
from bench.common import ProcSampler, emit, machine, note
from bench.hubkit import BROKER_BENCH_CONFIG, HubWorkers, enroll_bulk
from dcor_wire import topics
from hub.localservices import InfluxProcess, MosquittoProcess, find_binary, wait_until

SUB_FILTERS = (f"{topics.ROOT}/+/{topics.HEALTH}", f"{topics.ROOT}/+/{topics.DETECTIONS}")
T0_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC: every run writes the same points


def backlog_part(ids: list[str], per_device: int) -> list[tuple[str, bytes]]:
    """The messages of ``ids``: per device, health and detections alternating, every 5 s."""
    out: list[tuple[str, bytes]] = []
    for dev in ids:
        box = synth.SyntheticBox(dev)
        h_topic = topics.device_topic(dev, topics.HEALTH)
        d_topic = topics.device_topic(dev, topics.DETECTIONS)
        for seq in range(1, per_device + 1):
            ts = T0_MS + seq * 5_000
            if seq % 2:
                out.append((h_topic, synth.health_payload(box, seq, ts)))
            else:
                out.append((d_topic, synth.detections_payload(box, seq, ts)))
    return out


def publish_part(args: tuple[int, list[str], int]) -> int:
    """One publisher connection (run in its own process): QoS 1, a wide window."""
    port, ids, per_device = args
    items = backlog_part(ids, per_device)
    done = threading.Event()
    acked = [0]

    def on_publish(*_a: Any) -> None:
        acked[0] += 1
        if acked[0] >= len(items):
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(2000)
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    for topic, payload in items:
        c.publish(topic, payload, qos=1)
    if not done.wait(600):
        raise RuntimeError(f"publisher: only {acked[0]} of {len(items)} PUBACKed")
    c.disconnect()
    c.loop_stop()
    return len(items)


def preload(port: int, ids: list[str], per_device: int, publishers: int) -> int:
    parts = [ids[i::publishers] for i in range(publishers)]
    ctx = mp.get_context("spawn")
    with ctx.Pool(publishers) as pool:
        return sum(pool.map(publish_part, [(port, p, per_device) for p in parts if p]))


def _sub_cmd(port: int, count: int | None) -> list[str]:
    cmd = [find_binary("mosquitto_sub"), "-V", "5", "-p", str(port), "-q", "1", "-c",
           "-x", "3600", "-i", "bench-mosquitto-sub", "-F", "%m"]
    for f in SUB_FILTERS:
        cmd += ["-t", f]
    return [*cmd, "-C", str(count)] if count else [*cmd, "-E"]


def drain_with_mosquitto_sub(port: int, count: int) -> float:
    """Seconds from the first to the ``count``-th message mosquitto_sub prints."""
    proc = subprocess.Popen(_sub_cmd(port, count), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    seen = 0
    t_first = t_last = 0.0
    while seen < count:
        chunk = proc.stdout.read1(1 << 16)
        if not chunk:
            break
        if seen == 0:
            t_first = time.monotonic()
        seen += chunk.count(b"\n")
        t_last = time.monotonic()
    proc.wait(30)
    if seen < count:
        raise RuntimeError(f"mosquitto_sub received {seen} of {count}")
    return t_last - t_first


def drain_with_hub(hub: HubWorkers, count: int, timeout: float) -> tuple[float, dict[str, Any]]:
    """Start the workers on their queued sessions; seconds from the first received message
    to the last stored one (from the counters each worker saves every 0.2 s)."""
    hub.reset_stats()
    hub.start()
    sampler = ProcSampler(hub.pids, interval_s=0.5).start()
    t_first = 0.0
    deadline = time.monotonic() + timeout
    while True:
        counters = hub.counters()
        received = sum(int(c.get("received", 0)) for c in counters.values())
        done = sum(int(c.get("stored", 0)) + int(c.get("rejected", 0))
                   for c in counters.values())
        now = time.monotonic()
        if received and not t_first:
            t_first = now
        if done >= count:
            break
        if now > deadline:
            raise RuntimeError(f"hub stored {done} of {count} in {timeout}s:\n{hub.log_tail()}")
        time.sleep(0.05)
    usage = sampler.stop()
    return now - t_first, {"hub_cpu_pct": usage.cpu_pct, "hub_rss_mb": usage.rss_mb_max,
                           "rejected": sum(int(c.get("rejected", 0))
                                           for c in counters.values())}


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
    with tempfile.TemporaryDirectory(prefix="dcor-bench-ingest-") as tmp, \
            MosquittoProcess(data_dir=Path(tmp) / "mosquitto",
                             extra_config=BROKER_BENCH_CONFIG) as broker, \
            InfluxProcess(data_dir=Path(tmp) / "influxd") as influx:
        influx.create_database("bench")
        hub = HubWorkers(Path(tmp) / "hub", broker.port, influx.url, "bench", n=workers)
        try:
            enroll_bulk(hub.registry, ids)
            # Persistent sessions first, so the broker queues the backlog for each of them.
            subprocess.run(_sub_cmd(broker.port, None), check=True, timeout=30)
            hub.start()
            hub.wait_subscribed()
            hub.stop()
            note(f"pre-loading {messages} messages of {devices} devices")
            t = time.monotonic()
            sent = preload(broker.port, ids, per_device, publishers)
            note(f"pre-loaded {sent} in {time.monotonic() - t:.1f}s; mosquitto_sub drains")
            broker_s = drain_with_mosquitto_sub(broker.port, messages)
            note(f"mosquitto_sub: {messages / broker_s:.0f}/s; hub ({workers} workers) drains")
            sampler = ProcSampler([broker.pid or 0, influx.pid or 0], interval_s=0.5).start()
            hub_s, hub_figures = drain_with_hub(hub, messages, timeout=600)
            services = sampler.stop()
            note(f"hub: {messages / hub_s:.0f}/s; counting points")
            stored = wait_until(lambda: count_points(influx, "bench") or None, timeout=60)
            hub.stop()
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
