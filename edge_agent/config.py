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


class MqttTlsConfig(_Model):
    ca_file: Path = Field(title="CA certificate that signed the broker's certificate",
                          description="Relative paths are read from the config file's folder")
    cert_file: Path | None = Field(None, title="Client certificate, if the broker asks for one")
    key_file: Path | None = Field(
        None, title="Client key", description="Must not be readable by group or others")

    @model_validator(mode="after")
    def _pair(self) -> MqttTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give both cert_file and key_file, or neither")
        return self


class MqttConfig(_Model):
    host: str = Field("127.0.0.1", title="Broker host",
                      description="With TLS, the name the broker's certificate carries")
    port: int = Field(1883, ge=1, le=65535, title="Broker port")
    username: str = Field("", title="Broker user name (the enrolled device id by default)")
    password_file: Path | None = Field(
        None, title="File holding the broker password", description="Must not be world-readable"
    )
    keepalive_s: int = Field(30, ge=5, le=3600, title="MQTT keepalive, seconds")
    session_expiry: Duration = Field(3600.0, ge=0, title="MQTT 5 session expiry")
    reconnect_min: Duration = Field(0.5, gt=0, title="First reconnect delay (before jitter)")
    reconnect_max: Duration = Field(30.0, gt=0, title="Reconnect delay cap")
    first_connect_spread: Duration = Field(
        10.0, ge=0, le=600, title="The first connection after start waits uniform(0, this)",
        description="Boxes that boot together (a kelurahan's power comes back) must not all "
                    "connect in the same second: 10 s puts about a tenth of them in each "
                    "second. 0 connects at once")
    tls: MqttTlsConfig | None = Field(None, title="TLS to the broker (certificate and host "
                                      "name always checked; never falls back to plaintext)")
    require_tls: bool = Field(False, title="Refuse to run without TLS",
                              description="Enrollment bundles set it")

    @model_validator(mode="after")
    def _tls_required(self) -> MqttConfig:
        if self.require_tls and self.tls is None:
            raise ValueError("require_tls is set but mqtt.tls is missing: the box must not "
                             "talk to the broker in plaintext")
        return self


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
    hub_public_key_file: Path | None = Field(
        None, title="The hub's Ed25519 public key", description="Verifies signed configuration")

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

    def with_base_dir(self, base: Path) -> AgentConfig:
        """Credential and key paths made absolute against ``base`` (the config's folder), so
        a bundle folder works wherever it is copied."""
        def fix(p: Path | None) -> Path | None:
            return p if p is None or p.is_absolute() else base / p

        mqtt = self.mqtt.model_copy(update={"password_file": fix(self.mqtt.password_file)})
        if self.mqtt.tls is not None:
            t = self.mqtt.tls
            mqtt.tls = t.model_copy(update={"ca_file": fix(t.ca_file),
                                            "cert_file": fix(t.cert_file),
                                            "key_file": fix(t.key_file)})
        return self.model_copy(update={"mqtt": mqtt,
                                       "hub_public_key_file": fix(self.hub_public_key_file)})

    def secret_files(self) -> list[Path]:
        """Files that must be readable by the agent's user only."""
        return [p for p in (self.mqtt.password_file,
                            self.mqtt.tls.key_file if self.mqtt.tls else None) if p is not None]

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
    return validate_config(data, positions).with_base_dir(Path(path).resolve().parent)


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
