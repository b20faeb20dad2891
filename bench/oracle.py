"""The oracle: what the agents produced (their ledgers) against what the hub stored.

Pure, apart from ``read_ledgers``. For each device:

    missing  = ledger seqs not found in InfluxDB
    evicted  = rows the outbox itself dropped at its cap (its counters, less the new rows it
               refused outright, which never got into the ledger)
    lost     = missing - evicted - refused_by_influx   (never below 0)

``drops_exact`` checks the outbox's promise end to end: everything missing is of the lowest
class present, and no more rows are missing than it counted as dropped. It may have counted
up to one send window more: rows the hub had stored whose ack was still on its way when the
outbox evicted them. (Which rows go first, oldest of the lowest class, is table-tested in
``tests/unit/test_outbox.py``; the ledger cannot see what was unacknowledged when.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DeviceLedger:
    seqs: dict[int, int] = field(default_factory=dict)  # seq -> priority class
    refused: int = 0  # puts the full outbox refused (no seq reached the ledger)
    boots: set[str] = field(default_factory=set)


def parse_ledger(lines: Iterable[str]) -> dict[str, DeviceLedger]:
    out: dict[str, DeviceLedger] = {}
    for raw in lines:
        parts = raw.split()
        if len(parts) != 4:
            continue  # a line torn by a SIGKILL mid-write
        device, boot, seq, cls = parts
        d = out.setdefault(device, DeviceLedger())
        d.boots.add(boot)
        if seq == "R":
            d.refused += 1
        elif seq.isdigit() and cls.isdigit():
            d.seqs[int(seq)] = int(cls)
    return out


def read_ledgers(paths: Iterable[Path]) -> dict[str, DeviceLedger]:
    lines: list[str] = []
    for p in paths:
        if p.exists():
            lines += p.read_text().splitlines()
    return parse_ledger(lines)


@dataclass(frozen=True)
class Verdict:
    device: str
    produced: int
    stored: int
    missing: int
    evicted: int
    lost: int
    duplicate_points: int
    drops_exact: bool
    boots: int


def judge(device: str, ledger: DeviceLedger, stored: Iterable[int], dropped_total: int,
          refused_by_influx: Iterable[int] = (), window: int = 64) -> Verdict:
    stored_list = list(stored)
    stored_set = set(stored_list)
    poisoned = set(refused_by_influx)
    missing = sorted(s for s in ledger.seqs if s not in stored_set and s not in poisoned)
    evicted = max(0, dropped_total - ledger.refused)
    lost = max(0, len(missing) - evicted)
    return Verdict(
        device=device, produced=len(ledger.seqs), stored=len(stored_set & set(ledger.seqs)),
        missing=len(missing), evicted=evicted, lost=lost,
        duplicate_points=len(stored_list) - len(stored_set),
        drops_exact=_drops_exact(ledger, missing, evicted, window),
        boots=len(ledger.boots),
    )


def _drops_exact(ledger: DeviceLedger, missing: list[int], evicted: int, window: int) -> bool:
    if not len(missing) <= evicted <= len(missing) + window:
        return False
    if not missing:
        return True
    classes = {ledger.seqs[s] for s in missing}
    if len(classes) != 1:
        return False
    (cls,) = classes
    return not any(c > cls for c in ledger.seqs.values())  # a lower class should go first


@dataclass(frozen=True)
class Summary:
    produced: int
    lost: int
    evicted: int
    duplicate_points: int
    drops_exact: bool
    devices: int


def summarize(verdicts: Iterable[Verdict]) -> Summary:
    vs = list(verdicts)
    return Summary(produced=sum(v.produced for v in vs), lost=sum(v.lost for v in vs),
                   evicted=sum(v.evicted for v in vs),
                   duplicate_points=sum(v.duplicate_points for v in vs),
                   drops_exact=all(v.drops_exact for v in vs), devices=len(vs))


def reconnect_share(connects: Iterable[tuple[float, str]], fleet: int,
                    ignore: Iterable[str] = ()) -> tuple[int, float]:
    """(reconnects, the largest share of the fleet that reconnected within one second).

    ``connects`` are (unix time, client id) of every successful connection the broker saw;
    a client's first connection is not a reconnect.
    """
    skip = set(ignore)
    seen: set[str] = set()
    per_second: dict[int, int] = {}
    total = 0
    for ts, client in sorted(connects):
        if client in skip:
            continue
        if client not in seen:
            seen.add(client)
            continue
        total += 1
        per_second[int(ts)] = per_second.get(int(ts), 0) + 1
    peak = max(per_second.values(), default=0)
    return total, (peak / fleet if fleet else 0.0)


def merge_counts(rows: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        for k, v in r.items():
            out[k] = out.get(k, 0) + int(v)
    return out
