"""``dcor-provision bulk devices.csv``: enroll many boxes, one result per row, resumable.

Each row is checked locally first (a bad row gets its row number and reason; the good rows
still go through), then enrolled through the hub. The report CSV is rewritten after every
row, so an interrupted run loses nothing: running again skips the rows whose bundle folder is
already written.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

from dcor_fs import write_atomic
from provisioning.bundle import AGENT_CONFIG_NAME, write_bundle
from provisioning.client import HubClient, HubError

REQUIRED: Final = ("device_id", "site", "kecamatan", "kelurahan", "profile")
OPTIONAL: Final = ("site_name", "lat", "lon", "hardware")
REPORT_COLUMNS: Final = ("row", "device_id", "result", "reason")
_DEVICE_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")  # as dcor_wire.topics


class BulkFileError(ValueError):
    """The CSV file itself is unusable (missing, no header, missing columns)."""


@dataclass(frozen=True)
class RowResult:
    row: int  # line number in the CSV file (the header is line 1)
    device_id: str
    result: str  # ok | skipped | error
    reason: str = ""


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BulkFileError(f"cannot read {path}: {exc.strerror}") from exc
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise BulkFileError(f"{path}: the header needs the columns {', '.join(REQUIRED)} "
                            f"(missing: {', '.join(missing)}); optional: {', '.join(OPTIONAL)}")
    rows = []
    for index, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k}
        if any(row.values()):
            rows.append((index, row))
    return rows


def row_payload(row: dict[str, str]) -> dict[str, Any]:
    """The enrollment request of one row; ``ValueError`` names what is wrong."""
    empty = [c for c in REQUIRED if not row.get(c)]
    if empty:
        raise ValueError(f"empty {', '.join(empty)}")
    if not _DEVICE_ID_RE.fullmatch(row["device_id"]):
        raise ValueError(f"invalid device id {row['device_id']!r}: 3-63 of a-z, 0-9 and '-'")
    site: dict[str, Any] = {"id": row["site"], "kecamatan": row["kecamatan"],
                            "kelurahan": row["kelurahan"], "name": row.get("site_name", "")}
    lat, lon = row.get("lat", ""), row.get("lon", "")
    if bool(lat) != bool(lon):
        raise ValueError("give both lat and lon, or neither")
    if lat:
        try:
            site["lat"], site["lon"] = float(lat), float(lon)
        except ValueError:
            raise ValueError(f"lat/lon must be numbers, got {lat!r}, {lon!r}") from None
        if not (-90 <= site["lat"] <= 90 and -180 <= site["lon"] <= 180):
            raise ValueError("lat/lon out of range")
    return {"device_id": row["device_id"], "site": site, "profile": row["profile"],
            "hardware": row.get("hardware", "")}


class TextProgress:
    """``[#####.....] 12/20 beji-01 ok`` on one line of a terminal; plain lines otherwise."""

    def __init__(self, total: int, out: TextIO | None = None, width: int = 30) -> None:
        self.total = max(1, total)
        self.out = out or sys.stderr
        self.width = width
        self.tty = self.out.isatty()

    def update(self, done: int, note: str) -> None:
        filled = int(self.width * done / self.total)
        bar = f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} {note}"
        self.out.write(f"\r\x1b[K{bar}" if self.tty else bar + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")


def write_report(path: Path, results: Sequence[RowResult]) -> None:
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(REPORT_COLUMNS)
    for r in results:
        w.writerow([r.row, r.device_id, r.result, r.reason])
    write_atomic(path, text.getvalue().encode("utf-8"))


def run_bulk(client: HubClient, csv_path: Path, out_dir: Path, report_path: Path,
             progress: Callable[[int, str], None] | None = None) -> list[RowResult]:
    rows = read_rows(csv_path)
    results: list[RowResult] = []
    seen: set[str] = set()
    out_dir.mkdir(parents=True, exist_ok=True)
    for done, (line, row) in enumerate(rows, start=1):
        device_id = row.get("device_id", "")
        result = _one(client, row, line, out_dir, seen)
        seen.add(device_id)
        results.append(result)
        write_report(report_path, results)
        if progress:
            progress(done, f"{device_id or '-'} {result.result}")
    return results


def _one(client: HubClient, row: dict[str, str], line: int, out_dir: Path,
         seen: set[str]) -> RowResult:
    device_id = row.get("device_id", "")
    try:
        payload = row_payload(row)
    except ValueError as exc:
        return RowResult(line, device_id, "error", str(exc))
    if device_id in seen:
        return RowResult(line, device_id, "error", "device id repeated in this file")
    bundle_dir = out_dir / device_id
    if (bundle_dir / AGENT_CONFIG_NAME).exists():
        return RowResult(line, device_id, "skipped", f"bundle already in {bundle_dir}")
    try:
        answer = client.enroll(payload)
        write_bundle(bundle_dir, answer["files"])
    except HubError as exc:
        return RowResult(line, device_id, "error", exc.message if exc.status else str(exc))
    except (KeyError, TypeError, ValueError, OSError) as exc:
        return RowResult(line, device_id, "error", f"could not write the bundle: {exc}")
    return RowResult(line, device_id, "ok", str(bundle_dir))
