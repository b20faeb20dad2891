"""``python -m bench.faults [--quick|--full]``: every fault scenario, judged by the oracle.

Default lengths are the compressed ones (each scenario's fault lasts at most 5 minutes);
``--quick`` uses the CI lengths, ``--full`` the lengths of the issue. Prints one JSON line:
``scenarios``, ``lost``, ``duplicates_ratio``, ``crashes``, ``max_reconnect_share_per_s`` and
``results`` (one entry per scenario with the same figures and its own details).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.faultlab import Lab, LabSpec
from bench.priority import run_priority
from bench.scenarios import LENGTHS, SCENARIOS, Context, Scenario, by_name

PRIORITY = "priority_slow_link"
MAX_DUPLICATES = 0.005  # of what the fleet produced, per scenario (the bound)


def base_spec(length: str, agents: int, rate: float, hosts: int) -> LabSpec:
    quick = length == "quick"
    return LabSpec(agents=agents, hosts=hosts, rate=rate,
                   keepalive_s=10 if quick else 30,
                   reconnect_max_s=16.0 if quick else 30.0,
                   ack_timeout_s=15.0 if quick else 30.0)


def run_scenario(sc: Scenario, length: str, spec: LabSpec, root: Path,
                 seed: int = 1) -> dict[str, Any]:
    rnd = random.Random(seed)
    spec = sc.spec(replace(spec, seed=seed))
    lab = Lab(root / sc.name, spec)
    ctx = Context()
    started = time.monotonic()
    try:
        lab.start()
        time.sleep(4.0 if length == "quick" else 10.0)  # warm: every agent connected
        d = sc.duration(length)
        fault_started = time.monotonic()
        sc.run(lab, d, ctx, rnd)
        fault_s = time.monotonic() - fault_started
        drained = lab.quiesce(timeout=60.0 if length == "quick" else 300.0)
        result = lab.finish()
        result = {**result, **_refine(lab, ctx, result)}
    finally:
        lab.close()
    verdicts = result.pop("verdicts")
    result.update(scenario=sc.name, fault_s=round(fault_s, 1), drained=drained,
                  wall_s=round(time.monotonic() - started, 1), **ctx.figures)
    checks = {"no_loss": result["lost"] == 0, "drained": drained,
              "no_crash": result["crashes"] == 0,
              "integrity": result["integrity_failures"] == 0, **ctx.checks}
    if length != "quick":  # a CI-sized fleet is too small for a share of 0.5 % to mean much
        checks["duplicates_within_bound"] = (
            result.get("duplicates", 0) <= MAX_DUPLICATES * result.get("produced", 0))
    if result.get("influx_refused_lines_injected"):
        # The one bad line is refused alone (bisection), counted, and nothing else is lost.
        checks["bad_line_isolated"] = result["hub"].get("influx_refused_lines", 0) >= 1
    if sc.name == "outbox_cap_offline":
        checks["drops_exact"] = result["drops_exact"]
        checks["evicted_some"] = result["evicted"] > 0
    result["checks"] = checks
    result["ok"] = all(checks.values())
    result["lost_devices"] = [v.device for v in verdicts if v.lost][:5]
    return result


def _refine(lab: Lab, ctx: Context, result: dict[str, Any]) -> dict[str, Any]:
    """Re-judge with what the scenario knows (refused lines, quarantine), if it said any."""
    if not ctx.refused_by_influx and not ctx.extra_measurements:
        return {}
    again = lab.judge(ctx.refused_by_influx, ctx.extra_measurements)
    if ctx.extra_measurements:
        wrong = lab.devices[:2]
        in_health = sum(len(lab.stored_seqs("health", d)) for d in wrong)
        quarantined = sum(len(lab.stored_seqs("quarantine", d)) for d in wrong)
        flags = [bool(lab.device_health(d).get("clock_suspect")) for d in wrong]
        ctx.figures.update(quarantined_points=quarantined, wrong_clock_in_health=in_health)
        ctx.checks.update(quarantined=quarantined > 0, flagged=all(flags))
    return again


def summarize(results: list[dict[str, Any]], length: str) -> dict[str, Any]:
    produced = sum(r.get("produced", 0) for r in results)
    dups = sum(r.get("duplicates", 0) for r in results)
    return {
        "length": length,
        "scenarios": len(results),
        "ok": all(r.get("ok", False) for r in results),
        "lost": sum(r.get("lost", 0) for r in results),
        "duplicates_ratio": round(dups / produced, 5) if produced else 0.0,
        "crashes": sum(r.get("crashes", 0) for r in results),
        "max_reconnect_share_per_s": max(
            (r.get("max_reconnect_share_per_s", 0.0) for r in results), default=0.0),
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="CI lengths (<= 60 s per fault)")
    g.add_argument("--full", action="store_true", help="the full lengths of the issue")
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--rate", type=float, default=10.0, help="readings/s per agent")
    ap.add_argument("--hosts", type=int, default=5, help="agent processes")
    ap.add_argument("--only", action="append", default=[], help="scenario name (repeatable)")
    ap.add_argument("--keep", help="keep the labs' folders here")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    length = "quick" if args.quick else "full" if args.full else "compressed"
    assert length in LENGTHS
    names = args.only or [s.name for s in SCENARIOS] + [PRIORITY]
    spec = base_spec(length, args.agents, args.rate, args.hosts)
    results = []
    with tempfile.TemporaryDirectory(prefix="dcor-faults-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for name in names:
            if name == PRIORITY:
                results.append(run_priority(root / name, length))
            else:
                results.append(run_scenario(by_name(name), length, spec, root, args.seed))
            # Each scenario's own line as it ends (stderr), so a long run is never lost.
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps(summarize(results, length)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
