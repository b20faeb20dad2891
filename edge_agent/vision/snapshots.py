"""JPEG snapshots sized to a byte budget, and their MQTT 5 user-property metadata.

Budget per snapshot class (event, periodic, on demand): the image is resized to the class
width, then the highest JPEG quality between ``min_quality`` and ``quality`` that fits is
found by bisection; if even the lowest quality does not fit, the image shrinks and the search
repeats. ``scale`` (0..1] lowers width and budget together when the uplink is over its byte
budget, before anything of higher priority has to wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2

from edge_agent.vision.config import SnapshotClass
from edge_agent.vision.detector import Detection
from edge_agent.vision.flow import Image

_COLOURS = {"person": (0, 200, 255), "car": (255, 160, 0), "bus": (255, 0, 160),
            "truck": (160, 0, 255), "motorcycle": (0, 255, 120), "bicycle": (0, 255, 255)}
_MAX_SHRINKS = 4


@dataclass(frozen=True, slots=True)
class Snapshot:
    jpeg: bytes
    width: int
    height: int
    quality: int


def draw_boxes(image: Image, detections: Sequence[Detection]) -> Image:
    """A copy of ``image`` with labelled boxes (normalised coordinates)."""
    out = image.copy()
    h, w = out.shape[:2]
    thick = max(1, round(w / 400))
    for d in detections:
        x1, y1, x2, y2 = (int(d.box[0] * w), int(d.box[1] * h),
                          int(d.box[2] * w), int(d.box[3] * h))
        colour = _COLOURS.get(d.label, (255, 255, 255))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
        cv2.putText(out, f"{d.label} {d.score:.2f}", (x1, max(10, y1 - 3)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35 * thick + 0.1, colour, thick)
    return out


def _jpeg(image: Image, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality,
                                           cv2.IMWRITE_JPEG_OPTIMIZE, 1])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def encode_snapshot(image: Image, spec: SnapshotClass,
                    detections: Sequence[Detection] = (), scale: float = 1.0) -> Snapshot:
    """The best JPEG of ``image`` within ``spec``'s byte budget (times ``scale``)."""
    scale = min(1.0, max(0.1, scale))
    budget = int(spec.max_bytes * scale)
    h, w = image.shape[:2]
    width = max(16, min(w, int(spec.width * scale)))
    if spec.boxes and detections:
        image = draw_boxes(image, detections)  # drawn before resizing: boxes stay sharp
    for _ in range(_MAX_SHRINKS + 1):
        height = max(16, round(h * width / w))
        small = image if width == w else cv2.resize(image, (width, height),
                                                    interpolation=cv2.INTER_AREA)
        best = _fit(small, budget, spec.min_quality, spec.quality)
        if best is not None:
            quality, data = best
            return Snapshot(data, width, height, quality)
        # Even the lowest quality is too big: JPEG size scales roughly with pixel count.
        size = len(_jpeg(small, spec.min_quality))
        width = max(16, int(width * min(0.9, (budget / size) ** 0.5)))
    data = _jpeg(small, spec.min_quality)
    return Snapshot(data, small.shape[1], small.shape[0], spec.min_quality)


def _fit(image: Image, budget: int, low: int, high: int) -> tuple[int, bytes] | None:
    data = _jpeg(image, high)
    if len(data) <= budget:
        return high, data
    best: tuple[int, bytes] | None = None
    while low <= high - 1:
        mid = (low + high) // 2
        data = _jpeg(image, mid)
        if len(data) <= budget:
            best, low = (mid, data), mid + 1
        else:
            high = mid
        if high - low <= 4:  # close enough: each try costs a full encode
            break
    if best is None and low < high:
        data = _jpeg(image, low)
        if len(data) <= budget:
            best = (low, data)
    return best


def snapshot_id(camera_id: str, ts_ms: int) -> str:
    return f"{camera_id}-{ts_ms}"


def snapshot_meta(camera_id: str, ts_ms: int, kind: str, snap: Snapshot,
                  event_id: str | None = None, labels: Sequence[str] = ()) -> dict[str, str]:
    """MQTT 5 user properties sent with the JPEG on ``snapshot/<camera>``.

    Keys: ``id`` (what events reference), ``camera``, ``ts`` (ms, capture time), ``kind``
    (event, periodic, on_demand), ``width``, ``height``, ``quality``, and when relevant
    ``event`` (the event id) and ``labels`` (comma-separated classes drawn).
    """
    meta = {
        "id": snapshot_id(camera_id, ts_ms),
        "camera": camera_id,
        "ts": str(ts_ms),
        "kind": kind,
        "width": str(snap.width),
        "height": str(snap.height),
        "quality": str(snap.quality),
    }
    if event_id:
        meta["event"] = event_id
    if labels:
        meta["labels"] = ",".join(sorted(set(labels)))
    return meta
