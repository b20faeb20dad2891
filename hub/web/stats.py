"""Ingest counters: each worker writes its own nested counters; the room wants one total.

Pure: takes worker rows, returns JSON-ready dicts. Counters are free-form nested dicts of
numbers; numbers are summed key by key, dicts recursively. Anything else (a string, a bool,
a number where another worker has a dict) cannot be summed and is left out of the totals
but kept in that worker's own row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from hub.web.timefmt import as_utc, time_json

# A worker that has not written for this long is probably gone; its last counters still
# count towards the totals (they happened) but its row is marked.
STALE_WORKER_S: Final = 300.0


@dataclass(frozen=True)
class WorkerRecord:
    worker_id: str
    counters: Mapping[str, Any]
    updated_at: datetime | None


def _is_number(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (
        isinstance(v, float) and math.isfinite(v)
    )


def _add_into(total: dict[str, Any], counters: Mapping[str, Any]) -> None:
    for key, value in counters.items():
        key = str(key)
        if _is_number(value):
            current = total.get(key, 0)
            if _is_number(current):
                total[key] = current + value
        elif isinstance(value, Mapping):
            current = total.setdefault(key, {})
            if isinstance(current, dict):
                _add_into(current, value)


def _prune_empty(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _prune_empty(v)
            if not v:
                continue
        out[k] = v
    return out


def sum_counters(all_counters: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Key-by-key sum of nested numeric counters (see the module docstring)."""
    total: dict[str, Any] = {}
    for counters in all_counters:
        if isinstance(counters, Mapping):
            _add_into(total, counters)
    return _prune_empty(total)


def stats_json(workers: list[WorkerRecord], now: datetime) -> dict[str, Any]:
    """``/api/v1/ingest/stats``: the totals, then each worker with its age and a stale mark."""
    rows = []
    for w in sorted(workers, key=lambda w: w.worker_id):
        updated = as_utc(w.updated_at)
        age_s = None if updated is None else max(0.0, (now - updated).total_seconds())
        rows.append({
            "worker_id": w.worker_id,
            "updated_at": time_json(updated),
            "age_s": None if age_s is None else round(age_s, 1),
            "stale": age_s is None or age_s > STALE_WORKER_S,
            "counters": dict(w.counters) if isinstance(w.counters, Mapping) else {},
        })
    return {
        "totals": sum_counters(w.counters for w in workers),
        "workers": rows,
        "worker_count": len(rows),
        "live_worker_count": sum(1 for r in rows if not r["stale"]),
        "stale_after_s": STALE_WORKER_S,
        "generated_at": time_json(now),
    }
