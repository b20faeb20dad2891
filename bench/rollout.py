"""Configuration push to a simulated fleet: seconds from push to every report back, and what
it cost the hub.

    python -m bench.rollout [--devices 1000]

Real Mosquitto and InfluxDB on free loopback ports, ``dcor-hub ingest`` and ``dcor-hub
rollout run`` as processes, N devices in the registry (profile ``rpi4-cctv``). The devices are
simulated in one separate process: each document is checked by the agent's own code
(``edge_agent.remoteconf.document``: size, Ed25519 signature, schema, device, version, then
validated against AgentConfig over the box's agent.yaml), and answered with a real
``config/reported`` payload; nothing is applied (no stages to restart).

The push is one wave to every device (what ``dcor-hub rollout`` does for a one-wave
rollout): render and validate every document (the web process's part), sign, store, publish
retained; the ingest stores each report in InfluxDB and the registry. One JSON line:
``devices``, ``seconds_to_all_reported``, ``hub_cpu_s`` (ingest + engine + rendering),
and the parts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import emit, machine, note


def simulate(port: int, ids_file: str, pub_file: str, clients: int = 4) -> int:
    """The simulated boxes (child process): verify, validate, report."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from dcor_wire import payloads, topics
    from edge_agent.config import validate_config
    from edge_agent.remoteconf.document import Rejection, check_message, effective_config
    from edge_agent.remoteconf.keys import load_hub_key

    key = load_hub_key(Path(pub_file))
    ids = json.loads(Path(ids_file).read_text())
    local = {d: validate_config({"device_id": d}) for d in ids}
    seq = dict.fromkeys(ids, 0)
    lock = threading.Lock()

    def on_message(client: Any, _u: Any, msg: Any) -> None:
        dev = topics.parse_topic(msg.topic).device_id
        with lock:
            seq[dev] += 1
            n = seq[dev]
        fields: dict[str, Any] = {"ts": int(time.time() * 1000), "seq": n}
        try:
            got = check_message(bytes(msg.payload), device_id=dev, public_key=key,
                                current=(0, ""), seen=(0, ""))
            if got is None:
                return
            effective_config(local[dev], got.doc)
            fields.update(status="applied", version=got.doc.version, digest=got.doc.digest,
                          desired_version=got.doc.version, desired_digest=got.doc.digest,
                          rollout=got.doc.rollout)
        except Rejection as rej:
            fields.update(status="rejected", reason=rej.reason, error=rej.detail[:500],
                          desired_version=rej.version)
        body = payloads.encode(payloads.ConfigReported(**fields))
        client.publish(topics.device_topic(dev, topics.CONFIG_REPORTED), body, qos=1)

    made = []
    for i in range(clients):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-sim-{i}",
                        protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(1000)
        c.on_message = on_message
        c.connect("127.0.0.1", port)
        # Each client is a share of the boxes, subscribed to exactly their topics.
        c.subscribe([(topics.device_topic(d, topics.CONFIG_DESIRED), 1)
                     for d in ids[i::clients]])
        c.loop_start()
        made.append(c)
    print("ready", flush=True)
    sys.stdin.read()  # the parent closes stdin to stop us
    for c in made:
        c.disconnect()
        c.loop_stop()
    return 0


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def run(n: int) -> dict[str, Any]:
    import subprocess

    from sqlalchemy import func, select

    from bench.hubkit import HubWorkers, broker_config, enroll_bulk
    from hub.localservices import InfluxProcess, MosquittoProcess, wait_until
    from hub.rollout.service import ConfigService
    from hub.rollout.tables import ConfigReportRow, DesiredConfigRow
    from hub.settings import load_settings
    from provisioning import pki

    root = Path(tempfile.mkdtemp(prefix="dcor-bench-rollout-"))
    broker = MosquittoProcess(data_dir=root / "mqtt", extra_config=broker_config()).start()
    influx = InfluxProcess(data_dir=root / "influx").start()
    (root / "security").mkdir(mode=0o700)
    key = pki.make_signing_key()
    pki.write_file(root / "security" / "signing.key", pki.private_pem(key), 0o600)
    pub = pki.write_file(root / "security" / "signing.pub", pki.public_pem(key), 0o644)
    hub = HubWorkers(root / "hub", broker.port, influx.url, "bench", extra={
        "security_dir": str(root / "security"), "rollout_interval_s": 0.2})
    influx.create_database("bench")
    ids = [f"pole-{i:04d}" for i in range(n)]
    enroll_bulk(hub.registry, ids, hardware="rpi4")
    (root / "ids.json").write_text(json.dumps(ids))
    sim = subprocess.Popen([sys.executable, "-m", "bench.rollout", "--simulate",
                            str(broker.port), str(root / "ids.json"), str(pub)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    engine = None
    try:
        assert sim.stdout is not None and sim.stdout.readline().strip() == b"ready"
        hub.start()
        hub.wait_subscribed()
        log = open(root / "engine.log", "ab")  # noqa: SIM115 - the child owns it
        engine = subprocess.Popen([sys.executable, "-m", "hub.cli", "--config",
                                   str(hub.config), "--log-level", "WARNING", "rollout", "run"],
                                  stdout=log, stderr=subprocess.STDOUT)
        log.close()
        time.sleep(1.5)  # the engine connects; it is idle until the push
        svc = ConfigService(hub.registry, load_settings(hub.config, env={}))
        pids = [*hub.pids, engine.pid]
        cpu0, me0, t0 = _cpu(pids), time.process_time(), time.monotonic()
        note(f"push to {n} devices")
        svc.create_rollout({"targets": {"all": True}, "waves": {"canary": 0,
                                                                "percentages": [100]},
                            "thresholds": {"health_check": False, "bake_s": 0},
                            "skip_offline": False}, author="bench")
        render_cpu = time.process_time() - me0
        t_created = time.monotonic()

        def reported() -> int:
            with hub.registry.session() as s:
                return int(s.scalar(select(func.count()).select_from(ConfigReportRow)
                                    .where(ConfigReportRow.status == "applied")) or 0)

        def published() -> int:
            with hub.registry.session() as s:
                return int(s.scalar(select(func.count()).select_from(DesiredConfigRow)
                                    .where(DesiredConfigRow.published_at.is_not(None))) or 0)

        wait_until(lambda: published() >= n, 120, interval=0.05, message="all published")
        t_published = time.monotonic()
        wait_until(lambda: reported() >= n, 120, interval=0.05, message="all reported")
        t_done = time.monotonic()
        hub_cpu = _cpu(pids) - cpu0 + render_cpu
        return {"devices": n, "seconds_to_all_reported": t_done - t0,
                "hub_cpu_s": hub_cpu, "render_s": t_created - t0,
                "seconds_to_all_published": t_published - t0, "render_cpu_s": render_cpu,
                **machine()}
    finally:
        if sim.stdin is not None:
            sim.stdin.close()
        sim.wait(20)
        if engine is not None:
            engine.terminate()
            engine.wait(20)
        hub.close()
        influx.close()
        broker.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rollout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--simulate", nargs=3, metavar=("PORT", "IDS", "PUBKEY"),
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.simulate:
        port, ids_file, pub = args.simulate
        return simulate(int(port), ids_file, pub)
    emit(run(args.devices))
    return 0


if __name__ == "__main__":
    sys.exit(main())
