"""The LiteRT detector plugin for SSD-style models ending in TFLite_Detection_PostProcess.

Runtime: ``ai_edge_litert`` (LiteRT, the maintained successor), falling back to
``tflite_runtime`` on boxes that still carry it. Input uint8, int8 or float; outputs boxes
(ymin, xmin, ymax, xmax, normalised), classes, scores and count. One interpreter is not
thread-safe, so ``detect`` holds a lock: cameras sharing a detector take turns.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_agent.vision.config import DetectorConfig
from edge_agent.vision.errors import ModelMissingError, RuntimeMissingError, VisionError
from edge_agent.vision.flow import Average, Image

FETCH_HINT = "run `dcor-agent models fetch` to download the COCO SSD MobileNet v1 model"
_ID_LINE_RE = re.compile(r"^(\d+)[\s:]+(.+)$")
_BACKGROUND = {"???", "background", "__background__"}
WEAK_FACTOR = 0.6


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2, normalised 0..1


def parse_labels(text: str) -> dict[int, str]:
    """Class index -> label, for ``label`` per line (with or without a ``???`` background
    first line, which the model's class 0 then skips) or ``<index> label`` per line."""
    lines = [ln.strip() for ln in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if lines and all(_ID_LINE_RE.match(ln) for ln in lines if ln):
        pairs = (_ID_LINE_RE.match(ln) for ln in lines if ln)
        return {int(m.group(1)): m.group(2).strip() for m in pairs if m}
    offset = 1 if lines and lines[0].lower() in _BACKGROUND else 0
    return {i - offset: name for i, name in enumerate(lines)
            if i >= offset and name and name not in _BACKGROUND}


def load_interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as exc:
            raise RuntimeMissingError(
                "no TFLite runtime: pip install ai-edge-litert (or tflite-runtime)"
            ) from exc
    return Interpreter


class LiteRTDetector:
    def __init__(self, cfg: DetectorConfig, interpreter_cls: Any = None) -> None:
        for what, path in (("model", cfg.model), ("label map", cfg.labels)):
            if not Path(path).is_file():
                raise ModelMissingError(
                    f"detector {what} {path} not found: {FETCH_HINT} into {Path(path).parent} "
                    f"(or set detector.{'model' if what == 'model' else 'labels'} to the file)"
                )
        self.cfg = cfg
        self.labels = parse_labels(Path(cfg.labels).read_text(encoding="utf-8"))
        cls = interpreter_cls or load_interpreter_class()
        try:
            self._interp = cls(model_path=str(cfg.model), num_threads=cfg.threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise VisionError(f"cannot load model {cfg.model}: {exc}; {FETCH_HINT}") from exc
        inp = self._interp.get_input_details()[0]
        _, self.height, self.width, _ = (int(d) for d in inp["shape"])
        self._input_index = inp["index"]
        self._input_dtype = np.dtype(inp["dtype"])
        if self._input_dtype not in (np.uint8, np.int8, np.float32):
            raise VisionError(f"model input type {self._input_dtype} is not supported")
        self._outputs = self._map_outputs(self._interp.get_output_details())
        self._lock = threading.Lock()
        self.inference_ms = Average()
        self.last_done_mono: float | None = None
        self.runs = 0

    @staticmethod
    def _map_outputs(details: list[dict[str, Any]]) -> dict[str, int]:
        if len(details) != 4:
            raise VisionError(
                f"expected 4 outputs from TFLite_Detection_PostProcess, model has {len(details)}"
            )
        out: dict[str, int] = {}
        rest = []
        for d in details:
            shape = tuple(int(s) for s in d["shape"])
            if len(shape) == 3 and shape[-1] == 4:
                out["boxes"] = d["index"]
            elif int(np.prod(shape)) == 1:
                out["count"] = d["index"]
            else:
                rest.append(d)
        if len(out) != 2 or len(rest) != 2:
            raise VisionError("model outputs do not look like boxes/classes/scores/count")
        # TF1 exports name them PostProcess:1 (classes) and :2 (scores); else decide by value.
        rest.sort(key=lambda d: str(d["name"]))
        if all(str(d["name"]).startswith("TFLite_Detection_PostProcess") for d in rest):
            out["classes"], out["scores"] = rest[0]["index"], rest[1]["index"]
        else:
            out["pair_a"], out["pair_b"] = rest[0]["index"], rest[1]["index"]
        return out

    def _prepare(self, image: Image) -> np.ndarray:
        resized = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
        if self._input_dtype == np.uint8:
            arr = rgb
        elif self._input_dtype == np.int8:
            arr = (rgb.astype(np.int16) - 128).astype(np.int8)
        else:
            arr = (rgb.astype(np.float32) - self.cfg.input_mean) / self.cfg.input_std
        return np.ascontiguousarray(arr[None, ...])

    def detect(self, image: Image) -> list[Detection]:
        """Detections at or above their class threshold."""
        return self.detect_split(image)[0]

    def detect_split(self, image: Image) -> tuple[list[Detection], list[Detection]]:
        """(strong, weak): weak ones score between ``WEAK_FACTOR`` x and 1 x their class
        threshold; the tracker may use them to keep a track alive, nothing counts them."""
        tensor = self._prepare(image)
        with self._lock:
            t0 = time.monotonic()
            self._interp.set_tensor(self._input_index, tensor)
            self._interp.invoke()
            boxes = self._interp.get_tensor(self._outputs["boxes"])[0]
            count = int(self._interp.get_tensor(self._outputs["count"]).reshape(-1)[0])
            classes, scores = self._classes_scores()
            done = time.monotonic()
            self.inference_ms.add((done - t0) * 1000.0)
            self.last_done_mono = done
            self.runs += 1
        return self._filter(boxes, classes, scores, count)

    def _classes_scores(self) -> tuple[np.ndarray, np.ndarray]:
        get = self._interp.get_tensor
        if "classes" in self._outputs:
            return get(self._outputs["classes"])[0], get(self._outputs["scores"])[0]
        a, b = get(self._outputs["pair_a"])[0], get(self._outputs["pair_b"])[0]
        a_int = bool(np.all(a == np.round(a)))
        return (a, b) if a_int or not np.all(b == np.round(b)) else (b, a)

    def _filter(self, boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray,
                count: int) -> tuple[list[Detection], list[Detection]]:
        keep = self.cfg.classes
        strong: list[Detection] = []
        weak: list[Detection] = []
        for i in range(min(count, len(scores))):
            label = self.labels.get(int(classes[i]), f"class{int(classes[i])}")
            score = float(scores[i])
            if keep is not None and label not in keep:
                continue
            threshold = self.cfg.threshold_for(label)
            if score < threshold * WEAK_FACTOR:
                continue
            y1, x1, y2, x2 = (min(1.0, max(0.0, float(v))) for v in boxes[i])
            if x2 > x1 and y2 > y1:
                det = Detection(label, score, (x1, y1, x2, y2))
                (strong if score >= threshold else weak).append(det)
        return strong, weak
