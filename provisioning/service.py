"""Enrollment on the hub: what the enrollment API calls (registry, broker, bundle).

Order matters for consistency: validate and render first (nothing changes on a bad request),
then the broker client, then the registry; if the registry step fails the broker client is
removed again, so a retry starts clean.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.broker.admin import DynsecAdmin
from hub.registry.db import Registry
from hub.registry.models import Device, MediaItem
from hub.security.models import DeviceInstall
from provisioning.enroll import (
    DEFAULT_AGENT_DATA_DIR,
    Bundle,
    DeviceCredentials,
    EnrollRequest,
    build_bundle,
)
from provisioning.hubinit import HubMaterial
from provisioning.registry_ops import EnrollError, SiteSpec, register_device

log = logging.getLogger("dcor.hub.enroll")

CHECK_ITEMS = ("broker_tls", "credentials", "clock", "camera", "model", "snapshot")
MAX_SNAPSHOT_ID = 128


class EnrollConflict(EnrollError):
    """The device exists already (enroll), or was revoked (replace)."""


class UnknownDevice(EnrollError):
    """No such device in the registry."""


def _aware(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


class EnrollmentService:
    def __init__(self, registry: Registry, admin: DynsecAdmin | None,
                 material: HubMaterial | None, broker_host: str, broker_port: int, *,
                 profiles_dir: Path | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.registry = registry
        self.admin = admin
        self.material = material
        self.broker_host = broker_host
        self.broker_port = broker_port
        self.profiles_dir = profiles_dir
        self._now = now

    @property
    def secure(self) -> bool:
        return self.admin is not None and self.material is not None

    def _credentials(self) -> DeviceCredentials | None:
        if self.material is None:
            return None
        return DeviceCredentials(secrets.token_urlsafe(24), self.material.ca_pem(),
                                 self.material.signing_public_pem())

    def _request(self, device_id: str, site: SiteSpec, profile: str, hardware: str,
                 agent_data_dir: Path, overrides: Mapping[str, Any]) -> EnrollRequest:
        return EnrollRequest(device_id=device_id, site=site, profile=profile,
                             broker_host=self.broker_host, broker_port=self.broker_port,
                             hardware=hardware, agent_data_dir=agent_data_dir,
                             overrides=dict(overrides))

    # --- enroll / replace / revoke --------------------------------------------------------

    def enroll(self, device_id: str, site: SiteSpec, profile: str, *, hardware: str = "",
               agent_data_dir: Path = DEFAULT_AGENT_DATA_DIR,
               overrides: Mapping[str, Any] | None = None, actor: str = "") -> Bundle:
        req = self._request(device_id, site, profile, hardware, agent_data_dir,
                            overrides or {})
        creds = self._credentials()
        bundle = build_bundle(req, self.profiles_dir, self._now(), creds)  # validates
        with self.registry.session() as s:
            if s.get(Device, device_id) is not None:
                raise EnrollConflict(f"device {device_id!r} is enrolled already; use replace "
                                     "for a new box at the same place")
        if self.admin is not None and creds is not None:
            self.admin.create_device(device_id, creds.password)
        try:
            register_device(self.registry, device_id, site, profile, bundle.config.hardware)
            with self.registry.session() as s:
                s.merge(DeviceInstall(
                    device_id=device_id, credential_generation=1, enrolled_by=actor,
                    enrolled_at=self._now(), request=_request_json(req), revoked_by="",
                    verified_by="", check_report=None))
        except Exception:
            if self.admin is not None:
                self.admin.delete_device(device_id)
            raise
        log.info("enrolled %s at site %s (by %s)", device_id, site.id, actor or "-")
        return bundle

    def replace(self, device_id: str, *, actor: str = "") -> Bundle:
        """New credentials for a new box at the same place; site and history stay."""
        with self.registry.session() as s:
            dev = s.get(Device, device_id)
            inst = s.get(DeviceInstall, device_id)
            if dev is None:
                raise UnknownDevice(f"no device {device_id!r} in the registry")
            if inst is not None and inst.revoked_at is not None:
                raise EnrollConflict(f"device {device_id!r} was revoked; enroll the new box "
                                     "under a new id")
            site = dev.site
            spec = SiteSpec(site.id, site.kecamatan, site.kelurahan, site.name, site.lat,
                            site.lon)
            saved = dict(inst.request) if inst is not None else {}
            profile, hardware = dev.profile, dev.hardware
        req = self._request(device_id, spec, profile, hardware,
                            Path(saved.get("agent_data_dir", str(DEFAULT_AGENT_DATA_DIR))),
                            saved.get("overrides", {}))
        creds = self._credentials()
        bundle = build_bundle(req, self.profiles_dir, self._now(), creds)
        if self.admin is not None and creds is not None:
            if self.admin.get_client(device_id) is None:
                self.admin.create_device(device_id, creds.password)  # enrolled locally
            else:
                self.admin.set_device_password(device_id, creds.password)
        with self.registry.session() as s:
            inst = s.get(DeviceInstall, device_id)
            if inst is None:
                inst = DeviceInstall(device_id=device_id, credential_generation=0,
                                     enrolled_at=self._now(), request=_request_json(req),
                                     revoked_by="", verified_by="")
                s.add(inst)
            inst.credential_generation += 1
            inst.enrolled_by, inst.enrolled_at = actor, self._now()
            inst.verified_at, inst.verified_by, inst.check_report = None, "", None
        log.info("replaced %s: new credentials (by %s)", device_id, actor or "-")
        return bundle

    def revoke(self, device_id: str, *, actor: str = "") -> None:
        """The broker drops the box now and refuses it afterwards; the registry keeps its
        history and marks it decommissioned."""
        with self.registry.session() as s:
            if s.get(Device, device_id) is None:
                raise UnknownDevice(f"no device {device_id!r} in the registry")
        if self.admin is not None:
            self.admin.delete_device(device_id)
        now = self._now()
        with self.registry.session() as s:
            dev = s.get(Device, device_id)
            assert dev is not None
            dev.status = "decommissioned"
            inst = s.get(DeviceInstall, device_id)
            if inst is None:
                inst = DeviceInstall(device_id=device_id, enrolled_at=now, request={},
                                     verified_by="")
                s.add(inst)
            inst.revoked_at, inst.revoked_by = now, actor
        log.info("revoked %s (by %s)", device_id, actor or "-")

    # --- on-site check --------------------------------------------------------------------

    def record_check(self, device_id: str, report: Mapping[str, Any], *,
                     actor: str = "") -> tuple[bool, list[str]]:
        """Store a check report; the install is verified when every item passed and the
        test snapshot it names is in the hub's media index. Returns (verified, problems)."""
        items, snapshot = read_check_report(report)  # first: a refused report writes nothing
        failed = [i["name"] for i in items if not i["ok"]]
        missing = [n for n in CHECK_ITEMS if n not in {i["name"] for i in items}]
        problems = [f"failed: {n}" for n in failed] + [f"missing: {n}" for n in missing]
        with self.registry.session() as s:
            dev = s.get(Device, device_id)
            if dev is None:
                raise UnknownDevice(f"no device {device_id!r} in the registry")
            if not snapshot or s.get(MediaItem, f"{device_id}:snapshot:{snapshot}") is None:
                problems.append("the hub has not received the test snapshot")
            inst = s.get(DeviceInstall, device_id)
            if inst is None:
                inst = DeviceInstall(device_id=device_id, enrolled_at=self._now(), request={},
                                     revoked_by="", verified_by="")
                s.add(inst)
            if inst.revoked_at is not None:
                problems.append("the device is revoked")
            verified = not problems
            inst.check_report = {"items": items[:20], "snapshot": snapshot,
                                 "problems": problems, "by": actor}
            inst.verified_at = self._now() if verified else None
            inst.verified_by = actor if verified else ""
        return verified, problems


def read_check_report(report: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The items and snapshot id of a check report as ``dcor-provision check`` sends it
    (openapi.yaml, installCheck), or EnrollError naming the first field that is off."""
    items = report.get("items")
    if not isinstance(items, list):
        raise EnrollError("'items' must be a list of {name, ok, detail} objects")
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise EnrollError(f"items[{n}] must be an object with name and ok")
        if not isinstance(item.get("name"), str):
            raise EnrollError(f"items[{n}].name must be a string")
        if not isinstance(item.get("ok"), bool):
            raise EnrollError(f"items[{n}].ok must be true or false")
        if not isinstance(item.get("detail", ""), str):
            raise EnrollError(f"items[{n}].detail must be a string")
    snapshot = report.get("snapshot")
    if not isinstance(snapshot, str) or len(snapshot) > MAX_SNAPSHOT_ID:
        raise EnrollError(f"'snapshot' must be the media id of the test snapshot (a string of "
                          f"at most {MAX_SNAPSHOT_ID} characters; empty when none was stored)")
    return items, snapshot


def _request_json(req: EnrollRequest) -> dict[str, Any]:
    return {"site": asdict(req.site), "profile": req.profile, "hardware": req.hardware,
            "agent_data_dir": str(req.agent_data_dir), "overrides": dict(req.overrides)}


def verified_devices(registry: Registry) -> dict[str, datetime]:
    """device id -> when its install was verified (for the fleet view)."""
    from sqlalchemy import select

    with registry.session() as s:
        rows = s.execute(select(DeviceInstall.device_id, DeviceInstall.verified_at)
                         .where(DeviceInstall.verified_at.is_not(None)))
        return {d: t for d, t in ((d, _aware(t)) for d, t in rows) if t is not None}
