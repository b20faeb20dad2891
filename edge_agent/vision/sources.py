"""Camera sources: one class per config ``type``, all behind the small ``FrameSource`` API.

A source opens, reads one BGR frame at a time and closes; it does not retry and does not
sleep. The capture loop (``capture.py``) owns reconnects and pacing, so every source gets
the same backoff and the same fast shutdown.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from edge_agent.vision.config import (
    OpenCVCameraConfig,
    Picamera2CameraConfig,
    SyntheticCameraConfig,
)
from edge_agent.vision.errors import SourceError, SourceFinished, VisionError
from edge_agent.vision.flow import Image

if TYPE_CHECKING:
    from edge_agent.vision.config import CameraConfig

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CRED_RE = re.compile(r"//[^/@]*@")
OPEN_TIMEOUT_MS = 8000
READ_TIMEOUT_MS = 8000


class FrameSource(Protocol):
    name: str
    # Frames per second the capture loop should deliver at, or None when ``read`` itself
    # blocks until the next frame (live cameras).
    pace_fps: float | None

    def open(self) -> None: ...

    def read(self) -> Image:
        """The next frame; SourceError on a fault, SourceFinished at the end of a file."""
        ...

    def close(self) -> None: ...


def expand_env(url: str, env: dict[str, str] | None = None) -> str:
    """Replace ``${NAME}`` from the environment, so passwords stay out of config files."""
    env = dict(os.environ) if env is None else env

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in env:
            raise SourceError(f"stream URL needs environment variable {m.group(1)}, not set")
        return env[m.group(1)]

    return _ENV_RE.sub(sub, url)


def redact(url: str) -> str:
    """The URL with any ``user:password@`` removed, for logs and errors."""
    return _CRED_RE.sub("//***@", url)


class OpenCVSource:
    """RTSP/HTTP URL, USB index or file, through OpenCV's FFmpeg or V4L2 backends."""

    def __init__(self, cfg: OpenCVCameraConfig) -> None:
        self._cfg = cfg
        self._cap: cv2.VideoCapture | None = None
        self.pace_fps: float | None = None
        if cfg.file is not None:
            self.name = str(cfg.file)
        elif cfg.usb is not None:
            self.name = f"usb:{cfg.usb}"
        else:
            self.name = redact(cfg.url or "")

    def open(self) -> None:
        self.close()
        cfg = self._cfg
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
        if cfg.file is not None:
            if not cfg.file.is_file():
                raise SourceError(f"video file {cfg.file} does not exist")
            cap = cv2.VideoCapture(str(cfg.file), cv2.CAP_FFMPEG)
        elif cfg.usb is not None:
            cap = cv2.VideoCapture(cfg.usb, cv2.CAP_V4L2)
        else:
            cap = cv2.VideoCapture(expand_env(cfg.url or ""), cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.name}")
        self._cap = cap
        if cfg.file is not None and cfg.pace:
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.pace_fps = fps if 0 < fps <= 240 else 10.0

    def read(self) -> Image:
        if self._cap is None:
            raise SourceError(f"{self.name} is not open")
        ok, img = self._cap.read()
        if ok and img is not None:
            return _as_bgr(img)
        if self._cfg.file is None:
            raise SourceError(f"{self.name} stopped delivering frames")
        if not self._cfg.loop:
            raise SourceFinished(f"{self.name} reached its end")
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        ok, img = self._cap.read()
        if not ok or img is None:
            raise SourceError(f"{self.name} cannot be read from its start")
        return _as_bgr(img)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class Picamera2Source:
    """The Raspberry Pi camera. picamera2 exists only on Raspberry Pi OS: imported on open."""

    def __init__(self, cfg: Picamera2CameraConfig) -> None:
        self._cfg = cfg
        self._cam: Any = None
        self.name = "picamera2"
        self.pace_fps: float | None = None

    def open(self) -> None:
        self.close()
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise SourceError(
                "picamera2 is not installed: it exists only on Raspberry Pi OS "
                "(apt install python3-picamera2; create the venv with --system-site-packages)"
            ) from exc
        cfg = self._cfg
        try:
            cam = Picamera2()
            # "RGB888" is laid out B, G, R in memory: exactly OpenCV's BGR.
            video = cam.create_video_configuration(
                main={"size": (cfg.width, cfg.height), "format": "RGB888"},
                controls={"FrameRate": cfg.fps},
            )
            cam.configure(video)
            cam.start()
        except Exception as exc:  # picamera2 raises bare RuntimeErrors and more
            raise SourceError(f"cannot start the Pi camera: {exc}") from exc
        self._cam = cam

    def read(self) -> Image:
        if self._cam is None:
            raise SourceError("the Pi camera is not open")
        try:
            img = self._cam.capture_array("main")
        except Exception as exc:
            raise SourceError(f"the Pi camera stopped: {exc}") from exc
        return _as_bgr(np.asarray(img))

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            except Exception:  # closing a failed camera must not mask the first error
                pass
            self._cam = None


def _as_bgr(img: np.ndarray) -> Image:
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def make_source(cfg: CameraConfig) -> FrameSource:
    """The runner for one camera config."""
    if isinstance(cfg, OpenCVCameraConfig):
        return OpenCVSource(cfg)
    if isinstance(cfg, Picamera2CameraConfig):
        return Picamera2Source(cfg)
    if isinstance(cfg, SyntheticCameraConfig):
        from edge_agent.vision.synthetic import SyntheticSource

        return SyntheticSource(cfg)
    raise VisionError(f"no source for camera type {getattr(cfg, 'type', '?')!r}")


__all__ = ["FrameSource", "OpenCVSource", "Picamera2Source", "SourceFinished", "make_source"]
