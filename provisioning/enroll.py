"""Enrollment: one device into the registry, and its bundle folder for the box.

The steps are separate so each can grow on its own: ``render_agent_config`` (pure apart from
reading the profile), ``Bundle`` (the files a box receives), ``enroll`` (validate, register,
write). ``enroll`` is the local mode (no broker credentials: the demo's anonymous loopback
broker); the hub's enrollment API (``provisioning.service``) adds credentials, the CA
certificate and the hub's public key through ``DeviceCredentials``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from dcor_wire.topics import check_device_id
from edge_agent.config import AgentConfig, validate_config
from hub.registry.db import Registry, open_registry
from hub.settings import HubSettings
from provisioning.bundle import (
    AGENT_CONFIG_NAME,
    CA_FILE,
    HUB_KEY_FILE,
    PASSWORD_FILE,
    BundleExistsError,
    write_bundle,
)
from provisioning.profiles import load_profile, merge
from provisioning.registry_ops import SiteSpec, register_device

__all__ = ["AGENT_CONFIG_NAME", "Bundle", "BundleExistsError", "DeviceCredentials",
           "EnrollRequest", "build_bundle", "enroll", "open_hub_registry",
           "render_agent_config"]

DEFAULT_AGENT_DATA_DIR = Path("/var/lib/dcor-agent")


@dataclass(frozen=True)
class DeviceCredentials:
    """What makes a bundle a secure one: the box's broker password, the CA that signed the
    broker's certificate, and the hub's public signing key."""

    password: str
    ca_pem: str
    hub_key_pem: str

    def __repr__(self) -> str:
        return "DeviceCredentials(password=***)"


@dataclass(frozen=True)
class EnrollRequest:
    """What a technician says about a new box."""

    device_id: str
    site: SiteSpec
    profile: str
    broker_host: str
    broker_port: int
    hardware: str = ""  # empty: the profile's hardware class
    agent_data_dir: Path = DEFAULT_AGENT_DATA_DIR  # on the box: outbox and state live here
    overrides: Mapping[str, Any] = field(default_factory=dict)  # merged last, e.g. health


@dataclass(frozen=True)
class Bundle:
    """Files for the box, by name within the bundle folder. All written mode 0600."""

    files: dict[str, str]
    config: AgentConfig

    def write(self, out_dir: Path, *, force: bool = False) -> Path:
        """Write every file atomically into ``out_dir`` (mode 0700); return the folder."""
        return write_bundle(out_dir, self.files, force=force)

    def __repr__(self) -> str:  # the files hold the password
        return f"Bundle(device={self.config.device_id!r}, files={sorted(self.files)})"


def open_hub_registry(settings: HubSettings) -> Registry:
    """The hub's registry from its settings (the SQLite default needs its folder)."""
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_registry(settings.resolved_database_url())


def render_agent_config(req: EnrollRequest, profiles_dir: Path | None = None,
                        secure: bool = False) -> tuple[dict[str, Any], AgentConfig]:
    """The device's ``agent.yaml`` document and its validated model.

    Raises ``TopicError`` for an invalid device id, ``ProfileError`` for an unknown profile
    and ``ConfigError`` (with the file:line of the profile value at fault, or
    ``(enrollment)`` for a value the request added) when the result is not a valid agent
    configuration.
    """
    check_device_id(req.device_id)
    data, positions = load_profile(req.profile, profiles_dir)
    device: dict[str, Any] = {
        "device_id": req.device_id,
        "mqtt": {"host": req.broker_host, "port": req.broker_port},
        "outbox": {"path": str(req.agent_data_dir / "outbox.sqlite")},
        "data_dir": str(req.agent_data_dir),
    }
    if req.hardware:
        device["hardware"] = req.hardware
    if secure:
        # Paths relative to agent.yaml's folder: the bundle works wherever it is copied.
        device["mqtt"].update(username=req.device_id, password_file=PASSWORD_FILE,
                              tls={"ca_file": CA_FILE}, require_tls=True)
        device["hub_public_key_file"] = HUB_KEY_FILE
    added = merge(device, req.overrides)
    # Errors in what enrollment added must not point at a line of the profile.
    positions = {**positions, **{loc: ("(enrollment)", 0) for loc in _leaves(added)}}
    doc = _ordered(merge(data, added))
    return doc, validate_config(doc, positions)


def _leaves(doc: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for key, value in doc.items():
        loc = (*prefix, key)
        out.extend(_leaves(value, loc) if isinstance(value, Mapping) else [loc])
    return out


def _ordered(doc: dict[str, Any]) -> dict[str, Any]:
    # Identity first, so a technician reading agent.yaml on the box sees whose it is.
    first = [k for k in ("device_id", "profile", "hardware") if k in doc]
    return {**{k: doc[k] for k in first}, **{k: v for k, v in doc.items() if k not in first}}


def build_bundle(req: EnrollRequest, profiles_dir: Path | None = None,
                 now: datetime | None = None,
                 credentials: DeviceCredentials | None = None) -> Bundle:
    doc, cfg = render_agent_config(req, profiles_dir, secure=credentials is not None)
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = (f"# dcor-agent configuration of {req.device_id}, generated by dcor-provision "
              f"enroll at {stamp}\n# from profile {req.profile}; re-enroll rather than edit.\n")
    text = header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    files = {AGENT_CONFIG_NAME: text}
    if credentials is not None:
        files.update({PASSWORD_FILE: credentials.password + "\n", CA_FILE: credentials.ca_pem,
                      HUB_KEY_FILE: credentials.hub_key_pem})
    return Bundle(files=files, config=cfg)


def enroll(registry: Registry, req: EnrollRequest, out_dir: Path, *,
           profiles_dir: Path | None = None, force: bool = False) -> Bundle:
    """Validate first (nothing changes on an invalid request), register, write the bundle."""
    bundle = build_bundle(req, profiles_dir)
    if (out_dir / AGENT_CONFIG_NAME).exists() and not force:
        raise BundleExistsError(f"{out_dir} already holds a bundle; pass --force to replace it")
    register_device(registry, req.device_id, req.site, req.profile, bundle.config.hardware)
    bundle.write(out_dir, force=True)
    return bundle
