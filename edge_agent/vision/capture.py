"""The capture loop of one camera: its own thread, reconnects, pacing, drop-and-count output.

Reconnect schedule: ``dcor_wire.backoff.Backoff`` (capped doubling with full jitter) between
``reconnect_min`` and ``reconnect_max``, reset by the first good frame, slept on the stop
event so ``stop()`` is never held up by a pending retry.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence

from dcor_wire.backoff import Backoff
from edge_agent.vision.errors import SourceError, SourceFinished
from edge_agent.vision.flow import DropQueue, Frame, RateMeter
from edge_agent.vision.sources import FrameSource

log = logging.getLogger(__name__)
_MIN_RETRY = 0.05  # full jitter can draw ~0: keep a failing open from spinning


class CaptureWorker:
    def __init__(
        self,
        camera_id: str,
        source: FrameSource,
        outputs: Sequence[DropQueue[Frame]],
        stop: threading.Event,
        reconnect_min: float = 1.0,
        reconnect_max: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.camera_id = camera_id
        self.source = source
        self._outputs = list(outputs)
        self._stop = stop
        self._backoff = Backoff(reconnect_min, reconnect_max, rand)
        self._clock = clock
        self._wall = wall
        self.meter = RateMeter(clock=clock)
        self.reconnects = 0  # successful re-opens after a loss
        self.failures = 0  # failed opens and reads
        self.last_frame_mono: float | None = None
        self.started_mono: float | None = None
        self.last_error = ""
        self.finished = False  # a non-looping file reached its end
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        return sum(q.dropped for q in self._outputs)

    def start(self) -> None:
        self.started_mono = self._clock()
        self._thread = threading.Thread(
            target=self.run, name=f"dcor.capture:{self.camera_id}", daemon=True
        )
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        opened_before = False
        is_open = False
        due = 0.0
        index = 0
        try:
            while not self._stop.is_set():
                if not is_open:
                    if not self._try(self.source.open):
                        continue
                    is_open = True
                    if opened_before:
                        self.reconnects += 1
                    opened_before = True
                    due = self._clock()
                fps = self.source.pace_fps
                if fps:
                    wait = due - self._clock()
                    if wait > 0 and self._stop.wait(wait):
                        break
                    # Next slot from the planned time, but never plan a catch-up burst.
                    due = max(due + 1.0 / fps, self._clock() - 1.0 / fps)
                try:
                    image = self.source.read()
                except SourceFinished:
                    self.finished = True
                    log.info("camera %s: %s finished", self.camera_id, self.source.name)
                    break
                except Exception as exc:
                    is_open = False
                    self.source.close()
                    self._failed(exc)
                    continue
                self._backoff.reset()
                now = self._clock()
                frame = Frame(image, int(self._wall() * 1000), now, index)
                index += 1
                self.last_frame_mono = now
                self.meter.tick(now)
                for q in self._outputs:
                    q.put(frame)
        finally:
            self.source.close()

    def _try(self, fn: Callable[[], None]) -> bool:
        try:
            fn()
            return True
        except Exception as exc:  # OpenCV and picamera2 raise more than SourceError
            self._failed(exc)
            return False

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self.last_error = str(exc)
        if not isinstance(exc, SourceError):
            log.warning("camera %s: unexpected source error", self.camera_id, exc_info=exc)
        else:
            log.info("camera %s: %s", self.camera_id, exc)
        self._stop.wait(max(_MIN_RETRY, self._backoff.next_delay()))
