"""``python -m bench.faultreport RUN.json``: the Markdown table of a ``bench.faults`` run.

Reads the summary line ``python -m bench.faults`` printed (the last JSON line of the file)
and prints the table that docs/reliability.md keeps for the latest runs, so the figures there
are copied from a run, not typed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

COLUMNS = ("scenario", "fault s", "wall s", "readings", "lost", "evicted", "duplicates",
           "dup %", "reconnects", "peak reconnect share/s", "hub RSS max MB (growth)",
           "agent host RSS max MB", "ok", "notes")
NOTE_KEYS = ("spooled_batches", "replayed_batches", "influx_refused_lines", "stale_skipped",
             "quarantined")


def summary_of(text: str) -> dict[str, Any]:
    """The last JSON object in ``text`` that has ``results``."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            data = json.loads(line)
            if "results" in data:
                return dict(data)
    raise ValueError("no bench.faults summary line found")


def _notes(r: dict[str, Any]) -> str:
    hub = r.get("hub") or {}
    notes = [f"{k} {hub[k]}" for k in NOTE_KEYS if hub.get(k)]
    if r.get("integrity_checks"):
        notes.append(f"integrity_check ok {r['integrity_checks'] - r.get('integrity_failures', 0)}"
                     f"/{r['integrity_checks']}")
    if r.get("scenario") == "outbox_cap_offline":
        notes.append(f"drops_exact {r.get('drops_exact')}")
    if "alarm_latency_s" in r:
        notes.append(f"alarm stored in {r['alarm_latency_s']} s (target 10 s)")
    if r.get("quarantined_points") is not None:
        notes.append(f"quarantined points {r['quarantined_points']}, wrong-clock points in "
                     f"health {r.get('wrong_clock_in_health')}")
    failed = [k for k, ok in (r.get("checks") or {}).items() if not ok]
    if failed:
        notes.append("failed: " + ", ".join(failed))
    return "; ".join(notes)


def row(r: dict[str, Any]) -> list[str]:
    produced = r.get("produced", 0)
    dups = r.get("duplicates", 0)
    rss = r.get("rss_max_mb") or {}
    growth = r.get("rss_growth") or {}
    hub_rss = f"{rss['hub']} ({growth.get('hub', '-')})" if "hub" in rss else "-"
    fault = r.get("fault_s")
    return [
        str(r.get("scenario", "?")), "-" if fault is None else f"{fault}",
        f"{r.get('wall_s', '-')}", str(produced), str(r.get("lost", "-")),
        str(r.get("evicted", 0)), str(dups), f"{100 * dups / produced:.2f}" if produced else "-",
        str(r.get("reconnects", 0)), str(r.get("max_reconnect_share_per_s", 0.0)), hub_rss,
        str(rss.get("agent_host", "-")), "yes" if r.get("ok") else "NO", _notes(r),
    ]


def table(summary: dict[str, Any]) -> str:
    lines = [
        f"Summary line: length {summary.get('length')}, scenarios {summary['scenarios']}, "
        f"ok {summary.get('ok')}, lost {summary['lost']}, duplicates_ratio "
        f"{summary['duplicates_ratio']}, crashes {summary['crashes']}, "
        f"max_reconnect_share_per_s {summary['max_reconnect_share_per_s']}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(row(r)) + " |" for r in summary["results"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.faultreport", description=__doc__)
    ap.add_argument("run", type=Path, help="a file holding bench.faults' output")
    args = ap.parse_args(argv)
    try:
        print(table(summary_of(args.run.read_text(encoding="utf-8"))))
    except (OSError, ValueError) as exc:
        print(f"bench.faultreport: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
