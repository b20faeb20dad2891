"""Which ``seq`` numbers of each device this ingest worker has already received: pure.

Redelivery is harmless to InfluxDB (same point, same key), which is exactly why it is
invisible there; this is where duplicates are counted. Per device the seen numbers are kept
as sorted, disjoint, inclusive ranges: telemetry arrives nearly in order, so a device needs a
handful of ranges, not a set of every seq. Memory is bounded: past ``max_ranges`` the two
oldest ranges are merged (the gap between them is then taken as seen, which can only
under-count duplicates, never invent one).

The state can be dumped as ranges and merged back (``seenjournal`` keeps it on disk so a
worker restarted after a crash still recognises what its previous run stored).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field


@dataclass
class SeqRanges:
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    def add(self, seq: int) -> bool:
        """Record ``seq``; True if it was new, False if it had been seen (a duplicate)."""
        i = bisect_right(self.starts, seq) - 1
        if i >= 0 and seq <= self.ends[i]:
            return False
        joins_left = i >= 0 and self.ends[i] == seq - 1
        joins_right = i + 1 < len(self.starts) and self.starts[i + 1] == seq + 1
        if joins_left and joins_right:
            self.ends[i] = self.ends[i + 1]
            del self.starts[i + 1], self.ends[i + 1]
        elif joins_left:
            self.ends[i] = seq
        elif joins_right:
            self.starts[i + 1] = seq
        else:
            self.starts.insert(i + 1, seq)
            self.ends.insert(i + 1, seq)
        return True

    def add_range(self, start: int, end: int) -> None:
        """Record every seq in ``start..end`` (inclusive) as seen."""
        if start > end:
            return
        i = bisect_right(self.starts, start) - 1
        if i >= 0 and self.ends[i] >= start - 1:
            start = self.starts[i]
        else:
            i += 1
        j = i
        while j < len(self.starts) and self.starts[j] <= end + 1:
            end = max(end, self.ends[j])
            j += 1
        self.starts[i:j] = [start]
        self.ends[i:j] = [end]

    def pairs(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends, strict=True))

    def __len__(self) -> int:
        return len(self.starts)

    def squeeze(self, max_ranges: int) -> None:
        while len(self.starts) > max_ranges > 0:
            self.ends[0] = self.ends[1]
            del self.starts[1], self.ends[1]


@dataclass
class DuplicateCounter:
    max_ranges: int = 64
    max_devices: int = 200_000
    _seen: dict[str, SeqRanges] = field(default_factory=dict)

    def is_duplicate(self, device: str, seq: int) -> bool:
        ranges = self._seen.get(device)
        if ranges is None:
            if len(self._seen) >= self.max_devices:
                self._seen.clear()  # a runaway id space: start over rather than grow
            ranges = self._seen[device] = SeqRanges()
        new = ranges.add(seq)
        ranges.squeeze(self.max_ranges)
        return not new

    def merge(self, device: str, pairs: list[tuple[int, int]]) -> None:
        """Take ranges another run of this worker had seen (from its journal)."""
        ranges = self._seen.get(device)
        if ranges is None:
            if len(self._seen) >= self.max_devices:
                return  # the journal of a runaway id space: forget, never grow
            ranges = self._seen[device] = SeqRanges()
        for start, end in pairs:
            ranges.add_range(start, end)
        ranges.squeeze(self.max_ranges)

    def dump(self) -> dict[str, list[tuple[int, int]]]:
        return {device: ranges.pairs() for device, ranges in self._seen.items()}
