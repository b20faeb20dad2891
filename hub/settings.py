"""Hub settings: defaults, then a YAML file, then ``DCOR_*`` environment variables.

Nothing is read at import time; ``load_settings`` is called by the CLI or the app factory.
Environment names are the field names upper-cased with a ``DCOR_`` prefix, e.g.
``DCOR_INFLUX_URL``, ``DCOR_DATABASE_URL``, ``DCOR_MQTT_PORT``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from hub.alerts.notify import WebhookConfig


class SettingsError(RuntimeError):
    """The hub's settings cannot be used; the message says which and how to fix it."""


class HubSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(Path("var/hub"), description="Spool, media and the SQLite registry")
    database_url: str = Field("", description="SQLAlchemy URL; default sqlite in data_dir")

    mqtt_host: str = Field("127.0.0.1", description="Broker host")
    mqtt_port: int = Field(1883, ge=1, le=65535)
    mqtt_username: str = Field("", description="Broker user of the hub")
    mqtt_password: SecretStr = Field(SecretStr(""), description="Broker password")
    mqtt_password_file: Path | None = Field(
        None, description="File holding the broker password (wins over mqtt_password)")
    mqtt_tls_ca_file: Path | None = Field(
        None, description="Connect with TLS, trusting this CA; None: plaintext (loopback only)")
    mqtt_keepalive_s: int = Field(30, ge=5, le=3600)
    mqtt_client_id: str = Field("dcor-hub-ingest", description="Persistent-session client id")
    mqtt_share_group: str = Field("", description="Shared subscription group; '' = none")

    influx_url: str = Field("http://127.0.0.1:8086", description="InfluxDB base URL (v1 API)")
    influx_db: str = Field("dcor", description="Database (1.x) or mapped bucket (2.x/3.x)")
    influx_username: str = Field("", description="v1 user (1.x auth)")
    influx_password: SecretStr = Field(SecretStr(""), description="v1 password")
    influx_token: SecretStr = Field(SecretStr(""), description="Token (InfluxDB 2.x / 3.x)")
    influx_timeout_s: float = Field(10.0, gt=0, le=300)

    batch_max_points: int = Field(5000, ge=1, le=100_000)
    batch_max_delay_s: float = Field(0.2, gt=0, le=10)
    stats_interval_s: float = Field(2.0, gt=0, le=300)

    media_max_bytes: int = Field(2 * 1024**3, ge=1024**2, description="Media store cap")
    media_max_age_s: float = Field(14 * 86400, gt=0, description="Media kept this long")

    alert_rules_path: Path | None = Field(
        None, description="Alert rules YAML (reloaded on change); None: the packaged defaults")
    alert_interval_s: float = Field(1.0, gt=0, le=60, description="Alert evaluation period")
    alert_webhooks: list[WebhookConfig] = Field(
        default_factory=list, description="Webhook receivers of alert notifications")
    alert_mqtt: bool = Field(True, description="Publish notifications on dcor/v1/_hub/alerts/*")

    security_dir: Path | None = Field(
        None, description="What `dcor-provision init-hub` wrote; default <data_dir>/security")
    broker_admin_username: str = Field(
        "dcor-admin", description="Dynamic-security admin client (password in security_dir)")
    device_broker_host: str = Field(
        "", description="Broker host name the boxes use (in the broker's certificate)")
    device_broker_port: int = Field(8883, ge=1, le=65535, description="Devices' TLS port")
    web_cookie_secure: bool = Field(
        True, description="Cookies over HTTPS only; false only for plain HTTP on loopback")
    web_anonymous_viewer: bool = Field(
        False, description="Visitors not logged in may read the fleet view (a wall screen)")
    web_proxy_hops: int = Field(
        0, ge=0, le=5, description="Trusted reverse proxies in front (X-Forwarded-For)")

    config_signing_key_path: Path | None = Field(
        None, description="Ed25519 key signing desired configuration; default "
                          "<security_dir>/signing.key (written by dcor-provision init-hub)")
    config_model_base_url: str = Field(
        "", description="Base URL boxes fetch model files from (this hub's web app, "
                        "e.g. https://hub.example:8080); '' = no models in documents")
    rollout_interval_s: float = Field(1.0, gt=0, le=60, description="Rollout engine period")

    web_host: str = Field("127.0.0.1")
    web_port: int = Field(8080, ge=0, le=65535)
    secret_key: SecretStr = Field(SecretStr(""), description="Flask session key; random if ''")

    @field_validator("alert_webhooks")
    @classmethod
    def _unique_webhooks(cls, hooks: list[WebhookConfig]) -> list[WebhookConfig]:
        names = [h.name for h in hooks]
        if len(set(names)) != len(names):
            raise ValueError("webhook names must be unique (each is its own delivery channel)")
        return hooks

    def resolved_security_dir(self) -> Path:
        return self.security_dir or self.data_dir / "security"

    def mqtt_password_value(self) -> str:
        """The hub's broker password: from ``mqtt_password_file`` when set."""
        if self.mqtt_password_file is not None:
            try:
                return self.mqtt_password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(f"cannot read mqtt_password_file "
                                    f"{self.mqtt_password_file}: {exc.strerror}") from exc
        return self.mqtt_password.get_secret_value()

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'registry.sqlite').resolve()}"


_ENV_PREFIX = "DCOR_"


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> HubSettings:
    """Merge defaults < YAML file < environment < explicit overrides, and validate."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if path is None and env.get("DCOR_HUB_CONFIG"):
        path = env["DCOR_HUB_CONFIG"]
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise SettingsError(f"cannot read hub settings {path}: {exc.strerror}") from exc
        if not isinstance(loaded, dict):
            raise SettingsError(f"{path}: expected a mapping of setting: value")
        values.update(loaded)
    for name in HubSettings.model_fields:
        key = _ENV_PREFIX + name.upper()
        if key in env:
            values[name] = env[key]
    values.update(overrides or {})
    try:
        return HubSettings(**values)
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise SettingsError("invalid hub settings:\n" + "\n".join(lines)) from exc
