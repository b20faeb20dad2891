"""Snapshots within their byte budget, and their user-property metadata."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.vision.config import SnapshotClass, SnapshotConfig
from edge_agent.vision.detector import Detection
from edge_agent.vision.snapshots import draw_boxes, encode_snapshot, snapshot_meta
from tests.vision.conftest import image


@pytest.fixture(scope="module")
def street(assets: Path) -> np.ndarray:
    return image(assets / "images" / "vtest_frame0100.png")


def _decode(jpeg: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


@pytest.mark.parametrize("name", ["event", "periodic", "on_demand"])
def test_default_classes_fit_their_budget(street: np.ndarray, name: str) -> None:
    spec: SnapshotClass = getattr(SnapshotConfig(), name)
    snap = encode_snapshot(street, spec)
    assert len(snap.jpeg) <= spec.max_bytes
    assert snap.width == min(spec.width, street.shape[1])
    assert _decode(snap.jpeg).shape[:2] == (snap.height, snap.width)


def test_event_snapshot_is_about_60kb_at_640px(street: np.ndarray) -> None:
    snap = encode_snapshot(street, SnapshotConfig().event)
    assert snap.width == 640 and 40_000 <= len(snap.jpeg) <= 60_000
    assert snap.quality >= 60  # the budget was spent on quality, not wasted


def test_a_tight_budget_lowers_quality_then_size(street: np.ndarray) -> None:
    spec = SnapshotClass(width=640, max_bytes=6_000, quality=85, min_quality=30)
    snap = encode_snapshot(street, spec)
    assert len(snap.jpeg) <= 6_000 and snap.width < 640 and snap.quality < 85


def test_scale_shrinks_width_and_bytes(street: np.ndarray) -> None:
    full = encode_snapshot(street, SnapshotConfig().event)
    half = encode_snapshot(street, SnapshotConfig().event, scale=0.5)
    assert half.width == 320 and len(half.jpeg) <= 30_000 < len(full.jpeg)


def test_boxes_are_drawn_when_asked(street: np.ndarray) -> None:
    det = [Detection("person", 0.9, (0.1, 0.1, 0.3, 0.5))]
    boxed = draw_boxes(street, det)
    assert not np.array_equal(boxed, street) and boxed is not street
    assert np.array_equal(draw_boxes(street, []), street)


def test_meta_is_strings_for_user_properties(street: np.ndarray) -> None:
    snap = encode_snapshot(street, SnapshotConfig().periodic)
    meta = snapshot_meta("cam1", 1_700_000_000_123, "event", snap, "cam1.crowd.1",
                         ["car", "person", "car"])
    assert meta == {
        "id": "cam1-1700000000123", "camera": "cam1", "ts": "1700000000123", "kind": "event",
        "width": str(snap.width), "height": str(snap.height), "quality": str(snap.quality),
        "event": "cam1.crowd.1", "labels": "car,person",
    }
