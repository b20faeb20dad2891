"""A synthetic camera: a textured still scene with sensor noise and moving blobs.

Used by the demo when no real video is around, and by tests, which also inject faults
(``frozen``, ``black``, ``stopped``) to exercise camera health end to end. The scene is
reproducible from its seed.
"""

from __future__ import annotations

import threading
from typing import Final, Literal

import cv2
import numpy as np

from edge_agent.vision.config import SyntheticCameraConfig
from edge_agent.vision.errors import SourceError
from edge_agent.vision.flow import Image

Fault = Literal["none", "frozen", "black", "stopped"]
FAULTS: Final = ("none", "frozen", "black", "stopped")
_NOISE_FRAMES = 8  # noise is cycled from a few precomputed frames: cheap, still never equal


class SyntheticSource:
    def __init__(self, cfg: SyntheticCameraConfig) -> None:
        self._cfg = cfg
        self.name = f"synthetic:{cfg.seed}"
        self.pace_fps: float | None = cfg.fps
        rng = np.random.default_rng(cfg.seed)
        self._background = _background(cfg.width, cfg.height, rng)
        self._noise = [
            rng.integers(-3, 4, size=(cfg.height, cfg.width, 1), dtype=np.int16)
            for _ in range(_NOISE_FRAMES)
        ]
        size = min(cfg.width, cfg.height)
        self._pos = rng.uniform([0, 0], [cfg.width, cfg.height], size=(cfg.blobs, 2))
        self._vel = rng.uniform(-1, 1, size=(cfg.blobs, 2)) * size / 40
        self._radius = rng.uniform(size / 30, size / 12, size=cfg.blobs)
        self._colour = rng.integers(0, 256, size=(cfg.blobs, 3))
        self._n = 0
        self._last: Image | None = None
        self._lock = threading.Lock()
        self._fault: Fault = "none"
        self._open = False

    @property
    def fault(self) -> Fault:
        return self._fault

    def inject(self, fault: Fault) -> None:
        """Switch the scene to a fault (or back to ``none``); thread-safe."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; use one of {FAULTS}")
        with self._lock:
            self._fault = fault

    def open(self) -> None:
        if self._fault == "stopped":
            raise SourceError(f"{self.name} is stopped")
        self._open = True

    def read(self) -> Image:
        if not self._open:
            raise SourceError(f"{self.name} is not open")
        with self._lock:
            fault = self._fault
        if fault == "stopped":
            self._open = False
            raise SourceError(f"{self.name} stopped delivering frames")
        if fault == "frozen" and self._last is not None:
            return self._last.copy()
        if fault == "black":
            return np.zeros_like(self._background)
        img = self._render()
        self._last = img
        return img

    def close(self) -> None:
        self._open = False

    def _render(self) -> Image:
        cfg = self._cfg
        noisy = self._background.astype(np.int16) + self._noise[self._n % _NOISE_FRAMES]
        img = np.clip(noisy, 0, 255).astype(np.uint8)
        self._n += 1
        if cfg.blobs:
            self._pos += self._vel
            for axis, limit in ((0, cfg.width), (1, cfg.height)):
                out = (self._pos[:, axis] < 0) | (self._pos[:, axis] > limit)
                self._vel[out, axis] *= -1
                self._pos[:, axis] = np.clip(self._pos[:, axis], 0, limit)
            for (x, y), r, c in zip(self._pos, self._radius, self._colour, strict=True):
                axes = (int(r), int(r * 1.8))
                colour = (int(c[0]), int(c[1]), int(c[2]))
                cv2.ellipse(img, (int(x), int(y)), axes, 0, 0, 360, colour, -1)
        return img


def _background(width: int, height: int, rng: np.random.Generator) -> Image:
    """A street-ish still: a vertical gradient, a few grey blocks and fine texture."""
    ramp = np.linspace(90, 170, height, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(ramp, (height, width, 3)).copy()
    for _ in range(6):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        w = int(rng.integers(width // 10, width // 3))
        h = int(rng.integers(height // 10, height // 3))
        img[y0:y0 + h, x0:x0 + w] = rng.integers(40, 220)
    noise = rng.normal(0, 12, size=(height, width)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 2)
    img += texture[:, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)
