"""Frames and the plumbing between stages: bounded drop-oldest queues and rate meters.

A stage that cannot keep up must never slow capture down (an RTSP client that stops reading
loses its connection), so queues drop the oldest frame and count it instead of blocking.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy.typing as npt

Image = npt.NDArray[Any]  # BGR uint8, HxWx3 (OpenCV stubs type their results loosely)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Frame:
    image: Image
    ts_ms: int  # device wall clock at capture: the payload ``ts``
    mono: float  # monotonic seconds at capture: every duration is measured on this
    index: int  # per source, from 0


class DropQueue(Generic[T]):
    """A bounded FIFO whose ``put`` never blocks: when full the oldest item is dropped."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Add ``item``; return False when an older item had to be dropped for it."""
        with self._cond:
            dropped = len(self._items) >= self._maxsize
            if dropped:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()
            return not dropped

    def get(self, timeout: float) -> T | None:
        """The oldest item, or None when nothing arrives within ``timeout`` seconds."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class RateMeter:
    """Events per second over a sliding window, on an injectable monotonic clock."""

    def __init__(self, window: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._times: deque[float] = deque()
        self.total = 0

    def tick(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        self._times.append(now)
        self.total += 1
        self._trim(now)

    def rate(self, now: float | None = None) -> float:
        now = self._clock() if now is None else now
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now, self._times[-1]) - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()


class Average:
    """Exponentially weighted mean of a duration (inference ms and the like)."""

    def __init__(self, weight: float = 0.1) -> None:
        self._weight = weight
        self.value: float | None = None

    def add(self, sample: float) -> None:
        if self.value is None:
            self.value = sample
        else:
            self.value += self._weight * (sample - self.value)
