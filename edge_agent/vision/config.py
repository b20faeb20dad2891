"""Configuration of the agent's video side: cameras (a union on ``type``) and the detector.

The agent's top configuration holds ``cameras: list[CameraConfig]`` and
``detector: DetectorConfig | None``; everything else here hangs below those two. Coordinates
of zones and lines are normalised (0..1 of width and height) so they survive a change of
stream resolution.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from dcor_wire.topics import TopicError, check_camera_id
from dcor_wire.units import ByteSize, Duration

DEFAULT_MODEL_DIR = Path("/var/lib/dcor-agent/models/coco_ssd_mobilenet_v1")
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # zone/line ids become InfluxDB tags

Point = tuple[Annotated[float, Field(ge=0.0, le=1.0)], Annotated[float, Field(ge=0.0, le=1.0)]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_name(v: str) -> str:
    if not _NAME_RE.fullmatch(v):
        raise ValueError(f"invalid id {v!r}: use 1-32 characters a-z, 0-9, '_' and '-'")
    return v


_Name = Annotated[str, AfterValidator(_check_name)]


class MotionConfig(_Model):
    enabled: bool = Field(
        default=True, title="Motion gate", description="Run the model only on motion"
    )
    method: Literal["diff", "mog2"] = Field(
        default="diff", title="Method", description="Running-average differencing (cheap) or MOG2"
    )
    width: int = Field(default=160, ge=32, le=1920, title="Analysis width in pixels (downscaled)")
    threshold: int = Field(
        default=25, ge=1, le=255, title="Per-pixel grey-level change that counts"
    )
    min_area: float = Field(
        default=0.002, gt=0.0, le=1.0, title="Moving fraction of the frame that counts as motion"
    )
    alpha: float = Field(default=0.05, gt=0.0, le=1.0, title="Background learning rate per frame")


class ZoneConfig(_Model):
    id: _Name = Field(title="Zone id", description="Becomes an InfluxDB tag: keep it short")
    points: list[Point] = Field(
        min_length=3, title="Polygon", description="Normalised [x, y] corners, 0..1"
    )
    classes: list[str] | None = Field(default=None, title="Classes counted here (all when unset)")
    enter_events: bool = Field(default=True, title="Send an event when an object enters")
    enter_cooldown: Duration = Field(
        default=30.0,
        ge=0,
        title="Enter-event cooldown",
        description="At most one per class per window",
    )
    crowd_threshold: int | None = Field(
        default=None, ge=1, title="Crowd threshold", description="Objects of one class at once"
    )
    crowd_hold: Duration = Field(
        default=3.0, ge=0, title="How long the crowd must last (and clear)"
    )


class LineConfig(_Model):
    id: _Name = Field(title="Line id", description="Becomes an InfluxDB tag: keep it short")
    points: tuple[Point, Point] = Field(title="Segment", description="Two normalised points")
    classes: list[str] | None = Field(default=None, title="Classes counted (all when unset)")


class SnapshotClass(_Model):
    width: int = Field(
        default=640, ge=64, le=3840, title="Width in pixels (height keeps the aspect)"
    )
    max_bytes: ByteSize = Field(default=60_000, ge=2_000, title="Byte budget of one JPEG")
    quality: int = Field(default=85, ge=10, le=100, title="First JPEG quality tried")
    min_quality: int = Field(default=30, ge=5, le=100, title="Lowest quality before shrinking")
    boxes: bool = Field(default=True, title="Draw detection boxes")


class SnapshotConfig(_Model):
    event: SnapshotClass = Field(default_factory=SnapshotClass, title="Event snapshots")
    periodic: SnapshotClass = Field(
        default_factory=lambda: SnapshotClass.model_validate(
            {"width": 480, "max_bytes": 25_000, "boxes": False}
        ),
        title="Periodic snapshots",
        description="The latest picture the room's fleet page shows per camera",
    )
    periodic_interval: Duration = Field(
        default=60.0, ge=0, title="Periodic snapshot period (0 = off)"
    )
    on_demand: SnapshotClass = Field(
        default_factory=lambda: SnapshotClass.model_validate({"width": 1280, "max_bytes": 150_000}),
        title="Snapshots asked for by a command",
    )


class VideoConfig(_Model):
    enabled: bool = Field(default=True, title="Record H.264 segments into the local ring")
    encoder: Literal["auto", "libx264", "h264_v4l2m2m"] = Field(
        default="auto", title="Encoder", description="auto: the Pi's hardware encoder when present"
    )
    width: int | None = Field(
        default=None, ge=64, le=3840, title="Recorded width (source when unset)"
    )
    segment: Duration = Field(default=4.0, ge=1.0, le=60.0, title="Segment length")
    keyframe_interval: Duration = Field(
        default=1.0, ge=0.2, le=10.0, title="Keyframe interval", description="Clip cut granularity"
    )
    quota: ByteSize = Field(default=512 * 1024**2, ge=1_000_000, title="Disk quota of the ring")
    crf: int = Field(default=28, ge=0, le=51, title="x264 constant rate factor")
    preset: str = Field(default="veryfast", title="x264 preset")
    bitrate: int = Field(
        default=1_000_000, ge=50_000, title="Bit rate for hardware encoders, bit/s"
    )
    pre_roll: Duration = Field(default=5.0, ge=0, title="Clip time before an event")
    post_roll: Duration = Field(default=5.0, ge=0, title="Clip time after an event")


class CameraHealthConfig(_Model):
    down: Duration = Field(default=5.0, gt=0, title="No frames for this long: camera down")
    frozen: Duration = Field(
        default=10.0, gt=0, title="Identical frames for this long: frozen image"
    )
    covered: Duration = Field(
        default=5.0, gt=0, title="Featureless frames for this long: covered lens"
    )
    stalled: Duration = Field(
        default=10.0, gt=0, title="No inference for this long: detector stalled"
    )
    recover: Duration = Field(default=2.0, ge=0, title="A fault must be gone this long to clear")
    covered_std: float = Field(
        default=6.0, ge=0, title="Covered below this grey-level standard deviation"
    )
    scene_change: float = Field(
        default=0.6, gt=0, le=1.0, title="Changed fraction of the scene that means the view moved"
    )
    scene_change_hold: Duration = Field(default=3.0, ge=0, title="How long the new view must last")


class _CameraBase(_Model):
    id: str = Field(title="Camera id", description="1-32 of a-z, 0-9, '_', '-'")
    name: str = Field(default="", title="Display name")
    enabled: bool = Field(default=True, title="Run this camera")
    motion: MotionConfig = Field(default_factory=MotionConfig, title="Motion gate")
    zones: list[ZoneConfig] = Field(default_factory=list, title="Zones")
    lines: list[LineConfig] = Field(default_factory=list, title="Counting lines")
    snapshots: SnapshotConfig = Field(default_factory=SnapshotConfig, title="Snapshots")
    video: VideoConfig = Field(default_factory=VideoConfig, title="Video ring")
    health: CameraHealthConfig = Field(default_factory=CameraHealthConfig, title="Health")
    interval: Duration = Field(default=10.0, ge=1.0, le=3600, title="Detections reporting interval")
    queue_size: int = Field(
        default=4, ge=1, le=256, title="Frames buffered per stage before dropping"
    )
    reconnect_min: Duration = Field(
        default=1.0, gt=0, title="First reconnect delay (before jitter)"
    )
    reconnect_max: Duration = Field(default=30.0, gt=0, title="Reconnect delay cap")

    @field_validator("id")
    @classmethod
    def _valid_id(cls, v: str) -> str:
        try:
            return check_camera_id(v)
        except TopicError as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _unique_ids(self) -> _CameraBase:
        for kind, items in (("zone", self.zones), ("line", self.lines)):
            ids = [i.id for i in items]
            if len(ids) != len(set(ids)):
                raise ValueError(f"{kind} ids repeat on camera {self.id!r}: {sorted(ids)}")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be at least reconnect_min")
        return self


class OpenCVCameraConfig(_CameraBase):
    type: Literal["opencv"] = Field(title="OpenCV source: RTSP/HTTP URL, USB index or file")
    url: str | None = Field(
        default=None, title="Stream URL", description="${NAME} is replaced from the environment"
    )
    usb: int | None = Field(default=None, ge=0, le=63, title="USB camera index (/dev/videoN)")
    file: Path | None = Field(default=None, title="Video file (demos and tests)")
    loop: bool = Field(default=False, title="Loop the file")
    pace: bool = Field(default=True, title="Deliver file frames at the file's own frame rate")

    @model_validator(mode="after")
    def _one_input(self) -> OpenCVCameraConfig:
        given = [n for n in ("url", "usb", "file") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of url, usb, file (got {given or 'none'})")
        if self.loop and self.file is None:
            raise ValueError("loop applies to files only")
        return self


class Picamera2CameraConfig(_CameraBase):
    type: Literal["picamera2"] = Field(title="Raspberry Pi camera through picamera2")
    width: int = Field(default=1280, ge=64, le=4056, title="Width")
    height: int = Field(default=720, ge=64, le=3040, title="Height")
    fps: float = Field(default=10.0, gt=0, le=120, title="Frames per second")


class SyntheticCameraConfig(_CameraBase):
    type: Literal["synthetic"] = Field(title="Synthetic scene with moving blobs (demo, tests)")
    width: int = Field(default=640, ge=64, le=3840, title="Width")
    height: int = Field(default=480, ge=64, le=2160, title="Height")
    fps: float = Field(default=10.0, gt=0, le=120, title="Frames per second")
    blobs: int = Field(default=3, ge=0, le=50, title="Moving blobs")
    seed: int = Field(default=0, title="Random seed (the scene is reproducible)")


CameraConfig = Annotated[
    OpenCVCameraConfig | Picamera2CameraConfig | SyntheticCameraConfig,
    Field(discriminator="type"),
]

COCO_VEHICLES_AND_PEOPLE = ["person", "bicycle", "car", "motorcycle", "bus", "truck"]


class DetectorConfig(_Model):
    type: Literal["litert"] = Field(
        default="litert", title="Runtime (LiteRT, tflite_runtime fallback)"
    )
    model: Path = Field(default=DEFAULT_MODEL_DIR / "detect.tflite", title="Model file (.tflite)")
    labels: Path = Field(
        default=DEFAULT_MODEL_DIR / "labelmap.txt", title="Label map, one per line"
    )
    threads: int = Field(default=2, ge=1, le=16, title="Inference threads")
    input_mean: float = Field(default=127.5, title="Float models: input = (pixel - mean) / std")
    input_std: float = Field(default=127.5, gt=0, title="Float models: see input_mean")
    threshold: float = Field(default=0.5, gt=0, le=1, title="Default score threshold")
    thresholds: dict[str, Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=dict, title="Per-class score thresholds"
    )
    classes: list[str] | None = Field(
        default_factory=lambda: list(COCO_VEHICLES_AND_PEOPLE),
        title="Classes kept",
        description="Everything else is ignored; null keeps all",
    )
    min_rate: float = Field(
        default=1.0, ge=0, le=60, title="Minimum inferences/s", description="Even with no motion"
    )
    max_rate: float = Field(default=5.0, gt=0, le=120, title="Maximum inferences/s per camera")

    @model_validator(mode="after")
    def _rates(self) -> DetectorConfig:
        if self.min_rate > self.max_rate:
            raise ValueError("min_rate must not exceed max_rate")
        return self

    def threshold_for(self, label: str) -> float:
        return self.thresholds.get(label, self.threshold)
