"""H.264 recording into a ring of short MPEG-TS segments on local disk, under a byte quota.

Each segment is ``<capture ts of its first frame, ms>.ts`` and starts with a keyframe; more
keyframes follow every ``keyframe_interval`` so a clip can start close to where it is asked
to. MPEG-TS stays readable while it is being written and after a power cut. Encoder: the
Pi's ``h264_v4l2m2m`` when its device node exists (``auto``), otherwise libx264 with
``tune=zerolatency`` (no B-frames, so decode order is display order and packets cut cleanly).
Clips are cut by ``edge_agent.vision.clips.cut_clip`` without re-encoding.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from edge_agent.vision.config import VideoConfig
from edge_agent.vision.flow import Frame, Image

log = logging.getLogger(__name__)
SEGMENT_SUFFIX = ".ts"
_MS = Fraction(1, 1000)
PI_ENCODER_NODE = Path("/dev/video11")


def choose_encoder(preferred: str) -> list[str]:
    """Encoders to try, in order, for the config's ``encoder``."""
    if preferred == "auto":
        return ["h264_v4l2m2m", "libx264"] if PI_ENCODER_NODE.exists() else ["libx264"]
    return [preferred] if preferred == "libx264" else [preferred, "libx264"]


class SegmentRing:
    def __init__(self, directory: Path, cfg: VideoConfig, fps_hint: float = 10.0) -> None:
        self.directory = directory
        self.cfg = cfg
        self.fps_hint = fps_hint if fps_hint > 0 else 10.0
        directory.mkdir(parents=True, exist_ok=True)
        self._container: Any = None
        self._stream: Any = None
        self._start_ms = 0
        self._last_pts = -1
        self._last_key_pts = 0
        self._size: tuple[int, int] | None = None
        self.encoder = ""
        self.frames = 0
        self.segments = 0
        self.deleted = 0

    def write(self, frame: Frame) -> None:
        image = self._scaled(frame.image)
        h, w = image.shape[:2]
        rel = frame.ts_ms - self._start_ms
        # A new segment when this one is long enough, the size changed or the clock jumped
        # back (a Pi without a clock battery steps its time at the first NTP sync).
        if (self._container is None or (w, h) != self._size or rel < 0
                or rel >= self.cfg.segment * 1000):
            self._open(frame.ts_ms, w, h)
            rel = 0
        pts = max(rel, self._last_pts + 1)
        # OpenCV's BT.601 conversion matches swscale's to one grey level and costs less;
        # the encoder then takes the planes as they are.
        yuv = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)
        vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        vf.pts = pts
        vf.time_base = _MS
        if pts - self._last_key_pts >= self.cfg.keyframe_interval * 1000 or pts == 0:
            vf.pict_type = av.video.frame.PictureType.I
            self._last_key_pts = pts
        self._last_pts = pts
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None
            self._stream = None
        self._enforce_quota()

    def _scaled(self, image: Image) -> Image:
        width = self.cfg.width
        h, w = image.shape[:2]
        if width is None or width >= w:
            out = image
        else:
            out = cv2.resize(image, (width, round(h * width / w)),
                             interpolation=cv2.INTER_AREA)
        oh, ow = out.shape[:2]
        if oh % 2 or ow % 2:  # yuv420p needs even sizes
            out = out[: oh - oh % 2, : ow - ow % 2]
        return out

    def _open(self, start_ms: int, width: int, height: int) -> None:
        self.close()
        path = self.directory / f"{start_ms}{SEGMENT_SUFFIX}"
        last_error: Exception | None = None
        for name in choose_encoder(self.cfg.encoder):
            container = av.open(str(path), mode="w", format="mpegts")
            try:
                stream = self._add_stream(container, name, width, height)
                stream.codec_context.open()
            except Exception as exc:  # a missing or busy hardware encoder: try the next
                container.close()
                last_error = exc
                log.info("encoder %s unavailable: %s", name, exc)
                continue
            self._container, self._stream, self.encoder = container, stream, name
            break
        else:
            raise RuntimeError(f"no H.264 encoder could be opened: {last_error}")
        self._start_ms = start_ms
        self._last_pts = -1
        self._last_key_pts = 0
        self._size = (width, height)
        self.segments += 1

    def _add_stream(self, container: Any, name: str, width: int, height: int) -> Any:
        rate = Fraction(round(self.fps_hint * 1000), 1000)
        stream = container.add_stream(name, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ctx = stream.codec_context
        ctx.time_base = _MS
        ctx.gop_size = max(1, round(self.cfg.keyframe_interval * self.fps_hint))
        if name == "libx264":
            # repeat-headers: every keyframe carries SPS/PPS, so a clip may start at any.
            ctx.options = {"preset": self.cfg.preset, "crf": str(self.cfg.crf),
                           "tune": "zerolatency", "forced-idr": "1",
                           "x264-params": "repeat-headers=1:scenecut=0"}
        else:
            # FFmpeg's V4L2 wrapper turns a frame marked I into a forced keyframe. Whether
            # each keyframe repeats SPS/PPS is up to the driver; cut_clip checks for them.
            ctx.bit_rate = self.cfg.bitrate
        return stream

    def _enforce_quota(self) -> None:
        segments = list_segments(self.directory)
        total = sum(size for _, _, size in segments)
        for _, path, size in segments[:-1]:  # never the newest
            if total <= self.cfg.quota:
                break
            try:
                path.unlink()
                self.deleted += 1
            except FileNotFoundError:
                pass
            total -= size


def list_segments(directory: Path) -> list[tuple[int, Path, int]]:
    """(start ms, path, bytes) of every segment, oldest first."""
    out = []
    for p in directory.glob(f"*{SEGMENT_SUFFIX}"):
        try:
            out.append((int(p.stem), p, p.stat().st_size))
        except (ValueError, FileNotFoundError):
            continue
    return sorted(out)
