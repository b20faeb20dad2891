"""Cameras for the demo's agents: real street video from the shared test assets when they
are there (the agents replay it in a loop through the real model), a synthetic scene when not.

Only the first few boxes get a camera: decoding, detecting and encoding video for a whole
fleet would take more than the two cores a laptop-sized demo machine has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CAMERA_BOXES = 2
_ASSETS = Path(__file__).resolve().parents[3] / "shared" / "assets"


def assets_dir() -> Path | None:
    return _ASSETS if (_ASSETS / "models" / "detect.tflite").is_file() else None


def _video(name: str) -> dict[str, Any]:
    return {"width": 480, "segment": "4s", "quota": "50MB"}


def camera_overrides(index: int) -> dict[str, Any]:
    """Agent config overrides (cameras, detector) for the demo box at ``index``."""
    if index >= CAMERA_BOXES:
        return {}
    assets = assets_dir()
    if assets is None:
        return {"cameras": [{"id": "cam1", "type": "synthetic", "blobs": 3, "seed": index,
                             "interval": "5s", "video": _video("synthetic"),
                             "snapshots": {"periodic_interval": "10s"}}]}
    detector = {"model": str(assets / "models" / "detect.tflite"),
                "labels": str(assets / "models" / "labelmap.txt"), "threads": 1,
                "max_rate": 2.0, "min_rate": 0.5}
    if index % 2 == 0:
        camera = {
            "id": "trotoar", "name": "Trotoar (pedestrian path)", "type": "opencv",
            "file": str(assets / "video" / "vtest_first250.avi"), "loop": True,
            "interval": "5s", "video": _video("vtest"),
            "snapshots": {"periodic_interval": "10s"},
            "zones": [{"id": "jalur", "points": [[0.2, 0.3], [0.8, 0.3], [0.8, 1], [0.2, 1]],
                       "crowd_threshold": 6}],
            "lines": [{"id": "garis", "points": [[0.0, 0.6], [1.0, 0.6]]}],
        }
    else:
        camera = {
            "id": "jalan", "name": "Jalan raya (road)", "type": "opencv",
            "file": str(assets / "video" / "traffic_frames.mp4"), "loop": True,
            "interval": "5s", "video": _video("traffic"),
            "snapshots": {"periodic_interval": "10s"},
        }
    return {"cameras": [camera], "detector": detector}
