"""Configuration push as the web app and the CLI use it: override layers with history, the
model catalogue, starting and steering rollouts. The rollout engine (``hub.rollout.engine``)
does the pushing; this side only writes intent, so it never needs the signing key.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy import select

from dcor_wire.configdoc import pinned_keys_set
from hub.registry.db import Registry
from hub.rollout import fleetdata
from hub.rollout.render import SCOPES, ProfileCache, Rendered, RenderError, render
from hub.rollout.spec import RolloutSpec, plan_by_class, spec_json
from hub.rollout.tables import (
    ConfigOverrideRow,
    ModelRow,
    RolloutDeviceRow,
    RolloutRow,
)
from hub.settings import HubSettings

ACTIVE: Final = ("running", "paused", "aborting")
ACTIONS: Final = {"pause": ("running",), "resume": ("paused",),
                  "abort": ("running", "paused")}
MAX_PROBLEMS: Final = 20


class ConfigPushError(ValueError):
    """A request the hub refuses; ``problems`` lists what to fix, ``status`` the HTTP code."""

    def __init__(self, message: str, problems: list[str] | None = None,
                 status: int = 400) -> None:
        super().__init__(message)
        self.problems = problems or []
        self.status = status


@dataclass
class Renderer:
    """Renders many devices against one snapshot of layers, catalogue and profiles."""

    layers: dict[tuple[str, str], dict[str, Any]]
    catalog: list[fleetdata.CatalogModel]
    base_url: str
    profiles: ProfileCache

    def __call__(self, dev: fleetdata.DeviceInfo) -> Rendered:
        return render(dev, self.profiles.get, self.layers, self.catalog, self.base_url)


class ConfigService:
    def __init__(self, registry: Registry, settings: HubSettings | None = None,
                 profiles_dir: Path | None = None) -> None:
        self.registry = registry
        self.settings = settings
        self.profiles_dir = profiles_dir
        self.base_url = settings.config_model_base_url if settings else ""

    def renderer(self, layers: dict[tuple[str, str], dict[str, Any]] | None = None) -> Renderer:
        with self.registry.session() as s:
            found = fleetdata.current_layers(s) if layers is None else layers
            cat = fleetdata.catalog(s)
        return Renderer(found, cat, self.base_url, ProfileCache(self.profiles_dir))

    # --- override layers ------------------------------------------------------------------

    def set_override(self, scope: str, key: str, data: Mapping[str, Any] | None, *,
                     author: str, note: str = "") -> int:
        """A new edit of one layer (``data`` None removes it); every device it touches must
        still render. Returns the history row's id."""
        if scope not in SCOPES:
            raise ConfigPushError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
        if data is not None and not isinstance(data, Mapping):
            raise ConfigPushError("an override is a mapping of agent.yaml keys")
        if data is not None:
            pinned = pinned_keys_set(data)
            if pinned:
                raise ConfigPushError(f"{', '.join(pinned)} are set at enrollment on the box, "
                                      "never by an override")
        with self.registry.session() as s:
            layers = fleetdata.current_layers(s)
            devices = fleetdata.device_infos(s)
        touched = [d for d in devices.values() if d.scope_key(scope) == key]
        if not touched:
            raise ConfigPushError(f"no enrolled device has {scope} {key!r}", status=404)
        if data:
            layers[(scope, key)] = dict(data)
        else:
            layers.pop((scope, key), None)
        rend = self.renderer(layers)
        problems: list[str] = []
        for dev in touched:
            try:
                rend(dev)
            except RenderError as exc:
                problems += [f"{dev.id}: {p}" for p in exc.problems]
        if problems:
            raise ConfigPushError("the override makes configurations invalid",
                                  sorted(set(problems))[:MAX_PROBLEMS])
        with self.registry.session() as s:
            row = ConfigOverrideRow(scope=scope, key=key, data=dict(data) if data else None,
                                    author=author[:80], note=note[:300],
                                    created_at=datetime.now(UTC))
            s.add(row)
            s.flush()
            return row.id

    def override_history(self, scope: str | None = None,
                         key: str | None = None) -> list[dict[str, Any]]:
        stmt = select(ConfigOverrideRow).order_by(ConfigOverrideRow.id.desc()).limit(500)
        if scope:
            stmt = stmt.where(ConfigOverrideRow.scope == scope)
        if key:
            stmt = stmt.where(ConfigOverrideRow.key == key)
        with self.registry.session() as s:
            return [{"id": r.id, "scope": r.scope, "key": r.key, "data": r.data,
                     "author": r.author, "note": r.note,
                     "created_at": fleetdata.aware(r.created_at).isoformat()  # type: ignore[union-attr]
                     } for r in s.scalars(stmt)]

    # --- models ---------------------------------------------------------------------------

    def model_dir(self) -> Path:
        if self.settings is None:
            raise ConfigPushError("no hub settings: no model folder")
        return self.settings.data_dir / "models"

    def add_model(self, name: str, source: Path, *, hardware: str = "",
                  author: str) -> dict[str, Any]:
        """Copy ``source`` into the hub's model folder (by digest) and list it as ``name``
        for ``hardware`` ("" = any); an existing entry of that pair is replaced."""
        folder = self.model_dir()
        folder.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
        size = 0
        with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
            while block := src.read(1 << 20):
                h.update(block)
                out.write(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
        sha = h.hexdigest()
        os.replace(tmp, folder / sha)
        with self.registry.session() as s:
            row = s.scalars(select(ModelRow).where(ModelRow.name == name,
                                                   ModelRow.hardware == hardware)).first()
            if row is None:
                row = ModelRow(name=name, hardware=hardware)
                s.add(row)
            row.sha256, row.size, row.filename = sha, size, source.name[:200]
            row.author, row.created_at = author[:80], datetime.now(UTC)
        return {"name": name, "hardware": hardware, "sha256": sha, "size": size}

    def model_path(self, sha256: str) -> Path | None:
        """The file of a catalogued model (only catalogued digests are served)."""
        with self.registry.session() as s:
            known = s.scalars(select(ModelRow.id).where(ModelRow.sha256 == sha256)).first()
        path = self.model_dir() / sha256
        return path if known is not None and path.is_file() else None

    def list_models(self) -> list[dict[str, Any]]:
        with self.registry.session() as s:
            return [{"name": m.name, "hardware": m.hardware, "sha256": m.sha256,
                     "size": m.size, "filename": m.filename, "author": m.author}
                    for m in s.scalars(select(ModelRow).order_by(ModelRow.name,
                                                                 ModelRow.hardware))]

    # --- rollouts -------------------------------------------------------------------------

    def create_rollout(self, raw: Mapping[str, Any], *, author: str) -> dict[str, Any]:
        try:
            spec = RolloutSpec.model_validate(dict(raw))
        except ValidationError as exc:
            raise ConfigPushError("invalid rollout", [
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            ]) from exc
        with self.registry.session() as s:
            devices = fleetdata.device_infos(s)
            busy = set(s.scalars(select(RolloutDeviceRow.device_id).join(
                RolloutRow, RolloutRow.id == RolloutDeviceRow.rollout_id)
                .where(RolloutRow.status.in_(ACTIVE))))
        unknown = sorted(set(spec.targets.devices) - set(devices))
        if unknown:
            raise ConfigPushError("unknown devices", unknown[:MAX_PROBLEMS], status=404)
        ids = spec.targets.select(devices.values())
        if not ids:
            raise ConfigPushError("the targets select no enrolled device", status=404)
        clash = sorted(busy & set(ids))
        if clash:
            raise ConfigPushError("devices already in an unfinished rollout",
                                  clash[:MAX_PROBLEMS], status=409)
        rend = self.renderer()
        planned: dict[str, Rendered] = {}
        problems: list[str] = []
        for dev_id in ids:
            try:
                planned[dev_id] = rend(devices[dev_id])
            except RenderError as exc:
                problems += [f"{dev_id}: {p}" for p in exc.problems]
        if problems:
            raise ConfigPushError("configurations do not render", problems[:MAX_PROBLEMS])
        now = datetime.now(UTC)
        rid = f"r{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
        waves = plan_by_class([devices[i] for i in ids], spec.waves, rid)
        with self.registry.session() as s:
            s.add(RolloutRow(id=rid, status="running", spec=spec_json(spec), waves=len(waves),
                             wave=-1, author=author[:80], note=spec.note, created_at=now,
                             updated_at=now))
            s.add_all(RolloutDeviceRow(rollout_id=rid, device_id=dev, wave=i,
                                       planned=planned[dev].as_json())
                      for i, wave in enumerate(waves) for dev in wave)
        return {"id": rid, "devices": len(ids), "waves": [len(w) for w in waves]}

    def steer(self, rollout_id: str, action: str, *, author: str,
              reason: str = "") -> dict[str, Any]:
        if action not in ACTIONS:
            raise ConfigPushError(f"unknown action {action!r}")
        with self.registry.session() as s:
            row = s.get(RolloutRow, rollout_id)
            if row is None:
                raise ConfigPushError(f"no rollout {rollout_id!r}", status=404)
            if row.status not in ACTIONS[action]:
                raise ConfigPushError(f"cannot {action} a rollout that is {row.status}",
                                      status=409)
            row.status = {"pause": "paused", "resume": "running", "abort": "aborting"}[action]
            if action == "abort":
                row.reason = (reason or f"aborted by {author}")[:500]
            row.updated_at = datetime.now(UTC)
            return {"id": row.id, "status": row.status}
