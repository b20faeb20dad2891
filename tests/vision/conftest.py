"""Fixtures for the vision tests: the shared assets, the real model, an in-memory sink."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import msgspec
import pytest

from dcor_wire import payloads
from edge_agent.telemetry import Priority
from edge_agent.vision.config import DetectorConfig
from edge_agent.vision.detector import LiteRTDetector
from edge_agent.vision.flow import Frame, Image

ASSETS = Path(__file__).resolve().parents[2].parent / "shared" / "assets"
_KINDS: dict[str, type[msgspec.Struct]] = {
    "detections": payloads.Detections,
    "events": payloads.Event,
}


class MemorySink:
    """A TelemetrySink that validates like the outbox will (against the wire structs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seq = 0
        self.messages: list[tuple[str, msgspec.Struct, Priority]] = []
        self.snapshots: list[tuple[str, bytes, dict[str, str]]] = []

    def put(self, kind: str, fields: dict[str, Any], priority: Priority) -> int:
        with self._lock:
            self.seq += 1
            try:
                msg = msgspec.convert({**fields, "seq": self.seq}, _KINDS[kind])
            except msgspec.ValidationError as exc:
                raise ValueError(f"{kind}: {exc}") from exc
            self.messages.append((kind, msg, priority))
            return self.seq

    def put_snapshot(self, camera_id: str, jpeg: bytes, meta: dict[str, str]) -> int:
        with self._lock:
            assert all(isinstance(v, str) for v in meta.values())
            self.seq += 1
            self.snapshots.append((camera_id, jpeg, meta))
            return self.seq

    def of(self, kind: str) -> list[Any]:
        with self._lock:
            return [m for k, m, _ in self.messages if k == kind]

    def events(self, kind: str | None = None) -> list[payloads.Event]:
        return [e for e in self.of("events") if kind is None or e.kind == kind]


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture(scope="session")
def assets() -> Path:
    if not (ASSETS / "models" / "detect.tflite").is_file():
        pytest.skip(f"test assets not found at {ASSETS} (see the issue: ../shared/assets)")
    return ASSETS


@pytest.fixture(scope="session")
def detector_cfg(assets: Path) -> DetectorConfig:
    return DetectorConfig(
        model=assets / "models" / "detect.tflite",
        labels=assets / "models" / "labelmap.txt",
        threads=1,
        classes=None,
        min_rate=1.0,
        max_rate=10.0,
    )


@pytest.fixture(scope="session")
def detector(detector_cfg: DetectorConfig) -> LiteRTDetector:
    return LiteRTDetector(detector_cfg)


def read_frames(path: Path, t0_ms: int = 1_700_000_000_000) -> Iterator[Frame]:
    """Every frame of a video file with capture times at the file's own rate."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    i = 0
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                return
            yield Frame(img, t0_ms + round(i * 1000 / fps), i / fps, i)
            i += 1
    finally:
        cap.release()


def image(path: Path) -> Image:
    img = cv2.imread(str(path))
    assert img is not None, path
    return img
