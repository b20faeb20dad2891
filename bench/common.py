"""What every benchmark shares: one JSON line of results, process CPU/RSS sampling, timing.

A benchmark prints exactly one JSON object on stdout (``emit``); progress goes to stderr
(``note``), so ``python -m bench.x | tail -1 | jq`` always works.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil


def emit(result: dict[str, Any]) -> None:
    """Print the result as one JSON line on stdout (floats rounded to 2 decimals)."""
    clean = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in result.items()}
    print(json.dumps(clean, sort_keys=False), flush=True)


def note(message: str) -> None:
    """A progress line on stderr, with the time since the process started."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


_T0 = time.monotonic()


def machine() -> dict[str, Any]:
    """The few facts of the machine a figure depends on."""
    return {"cpus": os.cpu_count() or 0, "python": platform.python_version(),
            "machine": platform.machine()}


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


@dataclass
class ProcUsage:
    """CPU (percent of one core, summed over the processes) and RSS, sampled over a run."""

    cpu_pct: float = 0.0
    rss_mb_max: float = 0.0
    rss_mb_last: float = 0.0
    samples: int = 0


@dataclass
class ProcSampler:
    """Samples a set of processes (and their children) every ``interval_s`` in a thread.

    CPU is measured as the change of user+system time over the sampled span, so a process
    that came and went between samples is still counted up to its last sample.
    """

    pids: Iterable[int]
    interval_s: float = 1.0
    include_children: bool = True
    _usage: ProcUsage = field(default_factory=ProcUsage)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu0: dict[int, float] = field(default_factory=dict)
    _cpu1: dict[int, float] = field(default_factory=dict)
    _t0: float = 0.0
    _t1: float = 0.0

    def start(self) -> ProcSampler:
        self._t0 = time.monotonic()
        self._sample(first=True)
        self._thread = threading.Thread(target=self._loop, name="bench.sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> ProcUsage:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._sample(first=False)
        span = max(1e-6, self._t1 - self._t0)
        used = sum(self._cpu1.get(p, c0) - c0 for p, c0 in self._cpu0.items())
        used += sum(c for p, c in self._cpu1.items() if p not in self._cpu0)
        self._usage.cpu_pct = 100.0 * used / span
        return self._usage

    def _procs(self) -> list[psutil.Process]:
        out: list[psutil.Process] = []
        for pid in self.pids:
            try:
                p = psutil.Process(pid)
                out.append(p)
                if self.include_children:
                    out += p.children(recursive=True)
            except psutil.Error:
                continue
        return out

    def _sample(self, first: bool) -> None:
        rss = 0
        for p in self._procs():
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    cpu = t.user + t.system
                    rss += p.memory_info().rss
            except psutil.Error:
                continue
            if first:
                self._cpu0[p.pid] = cpu
            self._cpu1[p.pid] = cpu
        self._t1 = time.monotonic()
        mb = rss / 2**20
        self._usage.rss_mb_last = mb
        self._usage.rss_mb_max = max(self._usage.rss_mb_max, mb)
        self._usage.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample(first=False)
