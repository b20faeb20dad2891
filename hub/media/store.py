"""Media files on the hub's disk, with retention by age and by total size.

Layout: ``<root>/snapshots/<device>/<camera>/<ts>-<id>.jpg`` and
``<root>/clips/<device>/<clip id>.mp4`` (``.part`` while chunks arrive, with a ``.json``
sidecar of the byte ranges received, so an upload resumes where it stopped). Every file is
fsynced before the message that carried it is acknowledged.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from dcor_fs import write_atomic
from dcor_wire.media import ClipChunkMeta, SnapshotMeta


@dataclass(frozen=True)
class ClipProgress:
    path: Path
    received: int
    total: int

    @property
    def complete(self) -> bool:
        return self.received >= self.total


class MediaStore:
    def __init__(self, root: Path, max_bytes: int = 2 * 1024**3,
                 max_age_s: float = 14 * 86400) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def save_snapshot(self, device: str, camera: str, meta: SnapshotMeta, jpeg: bytes) -> Path:
        folder = self.root / "snapshots" / device / camera
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{meta.ts}-{meta.id.replace(':', '_')}.jpg"
        write_atomic(path, jpeg, mode=0o644)
        return path

    def save_clip_chunk(self, device: str, meta: ClipChunkMeta, data: bytes) -> ClipProgress:
        """Write one chunk at its offset; return progress (complete when all bytes are in)."""
        folder = self.root / "clips" / device
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{meta.clip.replace(':', '_')}.mp4"
        if final.exists():
            return ClipProgress(final, meta.total, meta.total)
        part = final.with_suffix(".part")
        ranges_path = final.with_suffix(".json")
        with self._lock:
            ranges: list[list[int]] = (json.loads(ranges_path.read_text())
                                       if ranges_path.exists() else [])
            mode = "r+b" if part.exists() else "w+b"
            with open(part, mode) as f:
                f.seek(meta.offset)
                f.write(data[: meta.total - meta.offset])
                f.flush()
                os.fsync(f.fileno())
            ranges = _add_range(ranges, meta.offset, min(meta.total, meta.offset + len(data)))
            received = sum(hi - lo for lo, hi in ranges)
            if received >= meta.total:
                os.replace(part, final)
                ranges_path.unlink(missing_ok=True)
                return ClipProgress(final, received, meta.total)
            write_atomic(ranges_path, json.dumps(ranges).encode(), mode=0o644)
        return ClipProgress(part, received, meta.total)

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def resolve(self, relative: str) -> Path | None:
        """The absolute path of a stored file, or None if it escapes the root or is gone."""
        candidate = (self.root / relative).resolve()
        if self.root.resolve() not in candidate.parents or not candidate.is_file():
            return None
        return candidate

    def prune(self, now: float | None = None) -> list[Path]:
        """Delete files older than max_age, then the oldest until under max_bytes."""
        now = time.time() if now is None else now
        files = sorted((p for p in self.root.rglob("*") if p.is_file()
                        and p.suffix in (".jpg", ".mp4")), key=lambda p: p.stat().st_mtime)
        removed: list[Path] = []
        total = sum(p.stat().st_size for p in files)
        for p in files:
            st = p.stat()
            if now - st.st_mtime > self.max_age_s or total > self.max_bytes:
                p.unlink(missing_ok=True)
                total -= st.st_size
                removed.append(p)
        return removed


def _add_range(ranges: list[list[int]], lo: int, hi: int) -> list[list[int]]:
    merged: list[list[int]] = []
    for a, b in sorted([*ranges, [lo, hi]]):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return merged
