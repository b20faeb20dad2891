from __future__ import annotations

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from edge_agent.vision.config import (
    CameraConfig,
    DetectorConfig,
    OpenCVCameraConfig,
    SyntheticCameraConfig,
)

cameras = TypeAdapter(list[CameraConfig])


def test_top_level_entry_points_have_sane_defaults() -> None:
    class Top(BaseModel):  # how the agent's config embeds them
        cameras: list[CameraConfig] = []
        detector: DetectorConfig | None = None

    top = Top.model_validate({"cameras": [{"type": "synthetic", "id": "cam1"}],
                              "detector": {}})
    cam = top.cameras[0]
    assert isinstance(cam, SyntheticCameraConfig)
    assert cam.snapshots.event.width == 640 and cam.snapshots.event.max_bytes == 60_000
    assert cam.health.down == 5.0 and cam.video.segment == 4.0
    assert top.detector is not None and top.detector.model.name == "detect.tflite"
    assert top.detector.min_rate <= top.detector.max_rate


def test_human_durations_and_sizes() -> None:
    cam = cameras.validate_python([{
        "type": "synthetic", "id": "cam1", "interval": "30s",
        "health": {"down": "1500ms", "frozen": "1m"},
        "video": {"quota": "200MB", "segment": "2s"},
        "snapshots": {"event": {"max_bytes": "40KB"}},
    }])[0]
    assert cam.interval == 30.0
    assert (cam.health.down, cam.health.frozen) == (1.5, 60.0)
    assert (cam.video.quota, cam.video.segment) == (200_000_000, 2.0)
    assert cam.snapshots.event.max_bytes == 40_000


@pytest.mark.parametrize(("doc", "message"), [
    ({"type": "opencv", "id": "cam1"}, "exactly one of url, usb, file"),
    ({"type": "opencv", "id": "cam1", "url": "rtsp://x", "usb": 0}, "exactly one"),
    ({"type": "opencv", "id": "cam1", "url": "rtsp://x", "loop": True}, "loop applies to files"),
    ({"type": "synthetic", "id": "Cam 1"}, "invalid camera id"),
    ({"type": "synthetic", "id": "c", "colour": "red"}, "Extra inputs are not permitted"),
    ({"type": "webcam", "id": "c"}, "does not match any of the expected tags"),
    ({"type": "synthetic", "id": "c", "zones": [{"id": "z", "points": [[0, 0], [1, 1]]}]},
     "at least 3 items"),
    ({"type": "synthetic", "id": "c", "zones": [{"id": "z", "points": [[0, 0], [2, 0], [1, 1]]}]},
     "less than or equal to 1"),
    ({"type": "synthetic", "id": "c", "lines": [{"id": "Line A", "points": [[0, 0], [1, 1]]}]},
     "invalid id"),
    ({"type": "synthetic", "id": "c", "lines": [{"id": "a", "points": [[0, 0], [1, 1]]},
                                                 {"id": "a", "points": [[0, 1], [1, 0]]}]},
     "line ids repeat"),
    ({"type": "synthetic", "id": "c", "health": {"down": "soon"}}, "invalid duration"),
])
def test_invalid_camera_configs_are_refused_with_a_reason(doc: dict, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        cameras.validate_python([doc])
    assert message in str(err.value)


def test_opencv_variants() -> None:
    url, usb, file = cameras.validate_python([
        {"type": "opencv", "id": "a", "url": "rtsp://u:${PW}@10.0.0.5/stream1"},
        {"type": "opencv", "id": "b", "usb": 0},
        {"type": "opencv", "id": "c", "file": "/tmp/x.mp4", "loop": True},
    ])
    assert isinstance(url, OpenCVCameraConfig) and url.url is not None
    assert isinstance(usb, OpenCVCameraConfig) and usb.usb == 0
    assert isinstance(file, OpenCVCameraConfig) and file.loop and file.pace


def test_detector_thresholds_per_class() -> None:
    cfg = DetectorConfig(threshold=0.5, thresholds={"car": 0.4})
    assert cfg.threshold_for("car") == 0.4
    assert cfg.threshold_for("person") == 0.5
    with pytest.raises(ValidationError, match="min_rate must not exceed max_rate"):
        DetectorConfig(min_rate=5, max_rate=2)
    with pytest.raises(ValidationError):
        DetectorConfig(thresholds={"car": 1.5})


def test_every_field_has_a_title() -> None:
    from edge_agent.vision import config

    models = [getattr(config, n) for n in dir(config)]
    models = [m for m in models if isinstance(m, type) and issubclass(m, BaseModel)
              and m.__module__ == config.__name__]
    assert models
    for model in models:
        for name, field in model.model_fields.items():
            assert field.title, f"{model.__name__}.{name} has no title"
