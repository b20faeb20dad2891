"""The agent's configuration model (pydantic, unknown keys refused) and its loader."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dcor_wire.topics import TopicError, check_device_id
from dcor_wire.units import ByteSize, Duration
from edge_agent.vision.config import CameraConfig, DetectorConfig
from edge_agent.yamlconf import ConfigFileError, load_with_positions, locate


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttConfig(_Model):
    host: str = Field("127.0.0.1", title="Broker host")
    port: int = Field(1883, ge=1, le=65535, title="Broker port")
    username: str = Field("", title="Broker user name (the enrolled device id by default)")
    password_file: Path | None = Field(
        None, title="File holding the broker password", description="Must not be world-readable"
    )
    keepalive_s: int = Field(30, ge=5, le=3600, title="MQTT keepalive, seconds")
    session_expiry: Duration = Field(3600.0, ge=0, title="MQTT 5 session expiry")
    reconnect_min: Duration = Field(0.5, gt=0, title="First reconnect delay (before jitter)")
    reconnect_max: Duration = Field(30.0, gt=0, title="Reconnect delay cap")


class HealthConfig(_Model):
    interval: Duration = Field(10.0, ge=0.2, le=3600, title="Seconds between health reports")
    disk_path: Path = Field(Path("/"), title="Filesystem whose usage is reported")


class OutboxConfig(_Model):
    path: Path = Field(Path("/var/lib/dcor-agent/outbox.sqlite"), title="SQLite outbox file")
    max_bytes: ByteSize = Field(64 * 1024 * 1024, ge=64 * 1024, title="Outbox size cap")
    window: int = Field(64, ge=1, le=10_000, title="Messages in flight awaiting PUBACK")
    ack_timeout: Duration = Field(
        30.0, gt=0, title="Resend a row the hub has not acknowledged after this long"
    )
    backlog_rate: float = Field(
        500.0, gt=0, title="Messages/s for rows older than the connection (live ones go first)"
    )


class AgentConfig(_Model):
    device_id: str = Field(title="Device id, as enrolled")
    profile: str = Field("", title="Profile name from firmware_configs")
    hardware: str = Field("", title="Hardware class (rpi4, rpi5, jetson-orin-nano, x86)")
    mqtt: MqttConfig = Field(default_factory=MqttConfig)  # type: ignore[arg-type]
    health: HealthConfig = Field(default_factory=HealthConfig)  # type: ignore[arg-type]
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)  # type: ignore[arg-type]
    metrics_port: int = Field(0, ge=0, le=65535, title="Prometheus /metrics port; 0 = off")
    data_dir: Path = Field(Path("/var/lib/dcor-agent"), title="Video ring and clips live here")
    cameras: list[CameraConfig] = Field(default_factory=list, title="Cameras on this box")
    detector: DetectorConfig | None = Field(None, title="On-device detector; none = no model")

    @model_validator(mode="after")
    def _unique_cameras(self) -> AgentConfig:
        ids = [c.id for c in self.cameras]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique: {', '.join(dupes)}")
        return self

    @field_validator("device_id")
    @classmethod
    def _valid_id(cls, v: str) -> str:
        try:
            return check_device_id(v)
        except TopicError as exc:
            raise ValueError(str(exc)) from exc

    def password(self) -> str:
        """The broker password, read from its file when one is configured."""
        pf = self.mqtt.password_file
        if pf is None:
            return ""
        return pf.read_text(encoding="utf-8").strip()


class ConfigError(ValueError):
    """The configuration is invalid. ``problems`` holds one ``file:line: message`` per error."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid agent configuration:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


def load_config(path: str | os.PathLike[str]) -> AgentConfig:
    try:
        data, positions = load_with_positions(Path(path))
    except ConfigFileError as exc:
        raise ConfigError([str(exc)]) from exc
    return validate_config(data, positions)


def validate_config(data: Any, positions: dict[Any, tuple[str, int]] | None = None) -> AgentConfig:
    positions = positions or {}
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = locate(positions, loc)
            dotted = ".".join(str(p) for p in loc) or "(top)"
            problems.append(f"{where}: {dotted}: {err['msg']}")
        raise ConfigError(problems) from exc
