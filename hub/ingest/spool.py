"""The hub's on-disk spool for batches InfluxDB could not take.

One file per batch, named by a zero-padded counter so replay keeps arrival order. A batch is
written to a temporary name, fsynced, renamed, and the folder fsynced: once ``put`` returns the
batch survives a power cut, which is what lets the hub acknowledge it to the broker and the
device. Replay deletes a file only after InfluxDB accepted it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for tmp in folder.glob("*.tmp"):  # a crash mid-write: that batch was never acked
            tmp.unlink()
        self._lock = threading.Lock()
        names = self._names()
        self._counter = int(names[-1].split(".")[0]) + 1 if names else 1

    def _names(self) -> list[str]:
        return sorted(p.name for p in self.folder.glob("*.lp"))

    def put(self, body: bytes) -> Path:
        with self._lock:
            n = self._counter
            self._counter += 1
        final = self.folder / f"{n:012d}.lp"
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return final

    def oldest(self) -> tuple[Path, bytes] | None:
        names = self._names()
        if not names:
            return None
        path = self.folder / names[0]
        return path, path.read_bytes()

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def depth(self) -> int:
        return len(self._names())

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*.lp"))
