"""Which seq numbers this ingest worker has stored, kept on disk across crashes.

InfluxDB hides a stored message stored again (same point), so duplicates are counted at the
hub's ingress (``dedup``). Kept only in memory, that count forgets everything at a crash,
which is exactly when the broker and the devices send again what the dead run stored but had
not acknowledged. Each stored batch's seq ranges are appended here before the batch is
acknowledged; a restarted worker loads them. One ``write`` per batch to an ``O_APPEND`` file
survives a killed process (the kernel has it); it is not fsynced, since a power cut costs
only an under-count. The journal is folded into a snapshot once it passes ``max_bytes``.

Format, one device per line: ``device start-end start-end ...``; a line that does not parse
(torn by a power cut) is skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from dcor_fs import write_atomic
from hub.ingest.dedup import DuplicateCounter

log = logging.getLogger("dcor.hub.ingest")

JOURNAL = "seen.journal"
SNAPSHOT = "seen.snapshot"
MAX_BYTES = 8 * 1024 * 1024


def to_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, disjoint, inclusive ranges covering ``seqs``."""
    out: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if out and seq <= out[-1][1] + 1:
            if seq > out[-1][1]:
                out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


def render(device_ranges: dict[str, list[tuple[int, int]]]) -> bytes:
    return "".join(
        device + "".join(f" {a}-{b}" for a, b in pairs) + "\n"
        for device, pairs in device_ranges.items() if pairs).encode()


def parse(text: bytes) -> Iterable[tuple[str, list[tuple[int, int]]]]:
    for raw in text.splitlines():
        parts = raw.decode("utf-8", "replace").split(" ")
        if len(parts) < 2 or not parts[0]:
            continue
        try:
            pairs = [(int(a), int(b)) for a, b in (p.split("-", 1) for p in parts[1:])]
        except ValueError:
            continue
        yield parts[0], pairs


class SeenJournal:
    def __init__(self, folder: Path, max_bytes: int = MAX_BYTES) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.journal = folder / JOURNAL
        self.snapshot = folder / SNAPSHOT
        self.max_bytes = max_bytes
        self._fd = -1
        self._size = 0
        self._failing = False

    def load(self, into: DuplicateCounter) -> int:
        """Merge what earlier runs stored into ``into``; open the journal for appending.
        Returns the number of devices read."""
        devices = set()
        for path in (self.snapshot, self.journal):
            try:
                text = path.read_bytes()
            except FileNotFoundError:
                continue
            for device, pairs in parse(text):
                into.merge(device, pairs)
                devices.add(device)
        self._fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size
        return len(devices)

    def record(self, stored: dict[str, set[int]], counter: DuplicateCounter) -> None:
        """Append one stored batch's seqs; fold the journal into a snapshot when it is
        full (``counter`` holds everything the journal and the snapshot do)."""
        if self._fd < 0 or not stored:
            return
        body = render({device: to_ranges(seqs) for device, seqs in stored.items()})
        try:
            os.write(self._fd, body)
        except OSError as exc:  # a full disk must not stop ingest: count less, store all
            if not self._failing:  # once per failing spell, not once per batch
                log.warning("could not append to %s: %s (duplicates after a restart may "
                            "be under-counted)", self.journal, exc)
            self._failing = True
            return
        self._failing = False
        self._size += len(body)
        if self._size > self.max_bytes:
            self.compact(counter)

    def compact(self, counter: DuplicateCounter) -> None:
        try:
            write_atomic(self.snapshot, render(counter.dump()), sync=False)
            os.ftruncate(self._fd, 0)
            self._size = 0
        except OSError as exc:
            log.warning("could not fold %s into %s: %s", self.journal, self.snapshot, exc)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
