"""What ``dcor-hub doctor`` concludes from what it measured (pure): findings, each with what to
fix, the report text and the exit code. The probes are in ``hub.ops.doctor``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

CERT_WARN_DAYS: Final = 30
CERT_FAIL_DAYS: Final = 7
# Disk: warn below either limit, fail below both halves (a spool or media burst fills fast).
DISK_WARN_FRACTION: Final = 0.10
DISK_WARN_BYTES: Final = 2 * 1024**3
DISK_FAIL_FRACTION: Final = 0.03
DISK_FAIL_BYTES: Final = 512 * 1024**2


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    check: str  # broker, influxdb, database, disk, certificates, ingest, clock
    status: Status
    summary: str
    fix: str = ""


def ok(check: str, summary: str) -> Finding:
    return Finding(check, Status.OK, summary)


def warn(check: str, summary: str, fix: str) -> Finding:
    return Finding(check, Status.WARN, summary, fix)


def fail(check: str, summary: str, fix: str) -> Finding:
    return Finding(check, Status.FAIL, summary, fix)


def cert_finding(name: str, not_after: datetime, now: datetime, sans: Sequence[str] = (),
                 expected_host: str = "") -> Finding:
    """A certificate's expiry (and, for the broker's, whether the boxes' host name is in it)."""
    days = (not_after - now).total_seconds() / 86400
    when = not_after.strftime("%Y-%m-%d")
    renew = (f"renew {name} before {when}: see docs/operations.md, 'Certificate expiry' "
             "(dcor-provision init-hub issues a new broker certificate from the same CA)")
    if days <= 0:
        return fail("certificates", f"{name} expired on {when}", renew)
    if days < CERT_FAIL_DAYS:
        return fail("certificates", f"{name} expires in {days:.0f} days ({when})", renew)
    if days < CERT_WARN_DAYS:
        return warn("certificates", f"{name} expires in {days:.0f} days ({when})", renew)
    if expected_host and sans and expected_host.lower() not in {s.lower() for s in sans}:
        return fail("certificates", f"{name} is not valid for {expected_host} (names: "
                    f"{', '.join(sans)})", "boxes check the host name: issue the broker "
                    "certificate for device_broker_host, or correct device_broker_host")
    return ok("certificates", f"{name} valid until {when} ({days:.0f} days)")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def disk_finding(what: str, path: str, free: int, total: int, fix: str) -> Finding:
    frac = free / total if total else 0.0
    summary = f"{what} ({path}): {_size(free)} free of {_size(total)} ({frac:.0%})"
    if frac < DISK_FAIL_FRACTION and free < DISK_FAIL_BYTES:
        return fail("disk", summary, fix)
    if frac < DISK_WARN_FRACTION or free < DISK_WARN_BYTES:
        return warn("disk", summary, fix)
    return ok("disk", summary)


def exit_code(findings: Iterable[Finding], strict: bool = False) -> int:
    """1 when anything failed (or, with ``strict``, warned); else 0."""
    bad = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
    return 1 if any(f.status in bad for f in findings) else 0


def format_report(findings: Sequence[Finding]) -> str:
    width = max((len(f.check) for f in findings), default=8)
    lines = []
    for f in findings:
        mark = {Status.OK: "ok  ", Status.WARN: "WARN", Status.FAIL: "FAIL"}[f.status]
        lines.append(f"{mark}  {f.check:<{width}}  {f.summary}")
        if f.fix and f.status is not Status.OK:
            lines.append(f"{'':4}  {'':<{width}}  fix: {f.fix}")
    fails = sum(f.status is Status.FAIL for f in findings)
    warns = sum(f.status is Status.WARN for f in findings)
    lines.append(f"{fails} failed, {warns} warnings, {len(findings) - fails - warns} ok")
    return "\n".join(lines)


def format_json(findings: Sequence[Finding]) -> str:
    return json.dumps([{**asdict(f), "status": str(f.status)} for f in findings], indent=1)
