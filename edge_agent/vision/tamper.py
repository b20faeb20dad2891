"""Per-frame signals behind the camera faults: a frozen image, a covered lens, a moved view.

- frozen: a subsample of the full frame is byte-identical to the previous one. A live sensor
  always adds some noise, so identical frames mean a stuck encoder, decoder or stream replay.
- covered: the grey-level standard deviation of a thumbnail collapses (a hand, a bag, paint,
  a dead sensor showing black).
- scene change: most of a thumbnail differs strongly from a slowly learned reference (the
  camera was turned or knocked), holding for a while so a passing bus does not trigger it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np

from edge_agent.vision.flow import Image

THUMB = (64, 48)
_SCENE_DELTA = 40  # grey levels a thumbnail pixel must differ by to count as changed
_REF_ALPHA = 0.02  # reference learning rate per inspected frame (~5 s at 10 fps)


@dataclass(frozen=True, slots=True)
class FrameStats:
    std: float  # grey-level standard deviation of the thumbnail
    repeated: bool  # byte-identical (on the subsample) to the previous frame
    scene_diff: float  # fraction of the thumbnail far from the reference, 0..1


class FrameInspector:
    def __init__(self, scene_change: float = 0.6) -> None:
        self._scene_change = scene_change
        self._digest: bytes | None = None
        self._reference: np.ndarray | None = None

    def inspect(self, image: Image, grey: np.ndarray | None = None) -> FrameStats:
        """Stats of ``image`` (``grey``: a small grey copy of it, when already made). The
        reference learns only frames close to it, so a new view stays "changed" until
        ``reset_scene`` accepts it."""
        digest = hashlib.blake2b(np.ascontiguousarray(image[::7, ::7]).tobytes(),
                                 digest_size=16).digest()
        repeated = digest == self._digest
        self._digest = digest
        thumb = _thumb(image, grey)
        if self._reference is None:
            self._reference = thumb.copy()
        changed = float(np.count_nonzero(np.abs(thumb - self._reference) > _SCENE_DELTA))
        fraction = changed / thumb.size
        if fraction < self._scene_change:
            cv2.accumulateWeighted(thumb, self._reference, _REF_ALPHA)
        return FrameStats(float(thumb.std()), repeated, fraction)

    def reset_scene(self, image: Image, grey: np.ndarray | None = None) -> None:
        self._reference = _thumb(image, grey)


def _thumb(image: Image, grey: np.ndarray | None) -> np.ndarray:
    if grey is None:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
