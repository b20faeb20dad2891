"""The LiteRT detector on the real COCO SSD MobileNet model and images, and its edges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent.vision.config import DetectorConfig
from edge_agent.vision.detector import LiteRTDetector, parse_labels
from edge_agent.vision.errors import ModelMissingError, VisionError
from tests.vision.conftest import image


def _labels(dets: list) -> list[str]:
    return [d.label for d in dets]


def test_grace_hopper_is_a_person(detector: LiteRTDetector, assets: Path) -> None:
    dets = detector.detect(image(assets / "images" / "grace_hopper.bmp"))
    assert max(d.score for d in dets if d.label == "person") >= 0.5


def test_vtest_frame_has_at_least_five_people(detector: LiteRTDetector, assets: Path) -> None:
    dets = detector.detect(image(assets / "images" / "vtest_frame0100.png"))
    assert _labels(dets).count("person") >= 5
    for d in dets:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1


def test_traffic_still_has_at_least_two_cars(detector: LiteRTDetector, assets: Path) -> None:
    dets = detector.detect(image(assets / "images" / "automl_traffic_0001.bmp"))
    assert _labels(dets).count("car") >= 2


def test_per_class_thresholds_and_class_filter(detector_cfg: DetectorConfig,
                                               assets: Path) -> None:
    img = image(assets / "images" / "grace_hopper.bmp")
    strict = LiteRTDetector(detector_cfg.model_copy(update={"thresholds": {"person": 0.9}}))
    assert "person" not in _labels(strict.detect(img))
    only = LiteRTDetector(detector_cfg.model_copy(update={"classes": ["tie"], "threshold": 0.4}))
    assert set(_labels(only.detect(img))) == {"tie"}
    strong, weak = only.detect_split(img)
    assert all(d.score >= 0.4 for d in strong) and all(0.24 <= d.score < 0.4 for d in weak)
    assert only.inference_ms.value is not None and only.runs == 2


def test_missing_model_names_the_fix(tmp_path: Path) -> None:
    cfg = DetectorConfig(model=tmp_path / "detect.tflite", labels=tmp_path / "labelmap.txt")
    with pytest.raises(ModelMissingError, match="dcor-agent models fetch") as err:
        LiteRTDetector(cfg)
    assert str(tmp_path) in str(err.value)


def test_a_broken_model_file_is_a_clear_error(tmp_path: Path, assets: Path) -> None:
    bad = tmp_path / "detect.tflite"
    bad.write_bytes(b"not a flatbuffer")
    cfg = DetectorConfig(model=bad, labels=assets / "models" / "labelmap.txt")
    with pytest.raises(VisionError, match="cannot load model"):
        LiteRTDetector(cfg)


@pytest.mark.parametrize(("text", "want"), [
    ("???\nperson\nbicycle\n", {0: "person", 1: "bicycle"}),
    ("person\nbicycle\n\n", {0: "person", 1: "bicycle"}),
    ("background\nperson\n", {0: "person"}),
    ("0  person\n2 car\n", {0: "person", 2: "car"}),
    ("0:person\n1: traffic light\n", {0: "person", 1: "traffic light"}),
    ("???\nperson\n???\ncar\n", {0: "person", 2: "car"}),  # COCO's gaps
])
def test_label_maps(text: str, want: dict[int, str]) -> None:
    assert parse_labels(text) == want


class FakeInterpreter:
    """A float-input model whose outputs come in another order with other names."""

    last_input: np.ndarray | None = None

    def __init__(self, model_path: str, num_threads: int) -> None:
        self.num_threads = num_threads

    def allocate_tensors(self) -> None:
        pass

    def get_input_details(self) -> list[dict[str, Any]]:
        return [{"index": 0, "shape": np.array([1, 4, 4, 3]), "dtype": np.float32}]

    def get_output_details(self) -> list[dict[str, Any]]:
        return [
            {"index": 1, "name": "StatefulPartitionedCall:0", "shape": np.array([1, 3])},
            {"index": 2, "name": "StatefulPartitionedCall:1", "shape": np.array([1, 3, 4])},
            {"index": 3, "name": "StatefulPartitionedCall:2", "shape": np.array([1])},
            {"index": 4, "name": "StatefulPartitionedCall:3", "shape": np.array([1, 3])},
        ]

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        FakeInterpreter.last_input = value

    def invoke(self) -> None:
        pass

    def get_tensor(self, index: int) -> np.ndarray:
        return {
            1: np.array([[0.9, 0.7, 0.2]], np.float32),  # scores
            2: np.array([[[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.2, 0.5], [0, 0, 1, 1]]]),
            3: np.array([3.0], np.float32),
            4: np.array([[0.0, 2.0, 0.0]], np.float32),  # classes
        }[index]


def test_float_input_and_unnamed_output_order(tmp_path: Path) -> None:
    (tmp_path / "m.tflite").write_bytes(b"x")
    (tmp_path / "labels.txt").write_text("person\nbicycle\ncar\n")
    cfg = DetectorConfig(model=tmp_path / "m.tflite", labels=tmp_path / "labels.txt",
                         classes=None, threshold=0.5)
    det = LiteRTDetector(cfg, interpreter_cls=FakeInterpreter)
    dets = det.detect(np.full((8, 8, 3), 255, np.uint8))
    assert [(d.label, d.score) for d in dets] == [("person", pytest.approx(0.9)),
                                                  ("car", pytest.approx(0.7))]
    assert dets[0].box == pytest.approx((0.2, 0.1, 0.6, 0.5))
    assert dets[1].box == pytest.approx((0.0, 0.0, 0.5, 1.0))  # clipped to the frame
    inp = FakeInterpreter.last_input
    assert inp is not None and inp.dtype == np.float32 and inp.shape == (1, 4, 4, 3)
    assert float(inp.max()) == pytest.approx(1.0)  # (255 - 127.5) / 127.5
