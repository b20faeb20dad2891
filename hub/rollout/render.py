"""Rendering one device's configuration (pure apart from reading profile files, cached).

    profile (firmware_configs, extends resolved; keys set at enrollment dropped)
      <- kecamatan override <- kelurahan override <- site override <- device override
      -> models: catalogue names become {url, sha256, size} for the device's hardware
      -> validated against the agent's own AgentConfig (over a stand-in agent.yaml)
      -> {"config", "models", "digest"}

Override layers may not set the keys enrollment owns (``dcor_wire.configdoc.PINNED``) and may
name models: ``models: {detect: coco-ssd}`` (a catalogue name) or a full item
``{url, sha256, size}``; ``detector.model: model://detect`` then points at the file.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from dcor_wire.configdoc import (
    PINNED,
    ModelSpec,
    compose,
    content_digest,
    merge,
    model_refs,
    pinned_keys_set,
    resolve_models,
)
from dcor_wire.payloads import MAX_CONFIG_BYTES
from edge_agent.config import ConfigError, validate_config
from provisioning.profiles import ProfileError, load_profile

SCOPES: Final = ("kecamatan", "kelurahan", "site", "device")


class RenderError(ValueError):
    """The device's configuration cannot be rendered; ``problems`` says why, one per line."""

    def __init__(self, device_id: str, problems: list[str]) -> None:
        super().__init__(f"{device_id}: " + "; ".join(problems))
        self.device_id = device_id
        self.problems = problems


@dataclass(frozen=True)
class DeviceInfo:
    id: str
    profile: str
    hardware: str
    site_id: str
    kecamatan: str
    kelurahan: str

    def scope_key(self, scope: str) -> str:
        return {"kecamatan": self.kecamatan, "kelurahan": self.kelurahan,
                "site": self.site_id, "device": self.id}[scope]


@dataclass(frozen=True)
class CatalogModel:
    name: str
    hardware: str  # "" = any hardware
    sha256: str
    size: int


@dataclass(frozen=True)
class Rendered:
    config: dict[str, Any]
    models: dict[str, Any]
    digest: str

    def as_json(self) -> dict[str, Any]:
        return {"config": self.config, "models": self.models, "digest": self.digest}


def choose_variant(catalog: Sequence[CatalogModel], name: str,
                   hardware: str) -> CatalogModel | None:
    """The variant built for ``hardware``, else the one for any hardware."""
    exact = [m for m in catalog if m.name == name and m.hardware == hardware and hardware]
    generic = [m for m in catalog if m.name == name and m.hardware == ""]
    found = exact or generic
    return found[0] if found else None


def strip_pinned(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A profile without the keys enrollment sets on each box (``outbox.path`` in common)."""
    out = merge({}, doc)
    for path in PINNED:
        node: Any = out
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return out


class ProfileCache:
    """Profiles read once per rendering pass (a rollout renders many devices)."""

    def __init__(self, profiles_dir: Path | None = None) -> None:
        self.profiles_dir = profiles_dir
        self._docs: dict[str, dict[str, Any] | ProfileError] = {}

    def get(self, name: str) -> dict[str, Any]:
        if name not in self._docs:
            try:
                data, _ = load_profile(name, self.profiles_dir)
                self._docs[name] = strip_pinned(data)
            except ProfileError as exc:
                self._docs[name] = exc
        found = self._docs[name]
        if isinstance(found, ProfileError):
            raise found
        return found


def render(dev: DeviceInfo, profile: Callable[[str], dict[str, Any]],
           layers: Mapping[tuple[str, str], Mapping[str, Any]],
           catalog: Sequence[CatalogModel], model_base_url: str) -> Rendered:
    problems: list[str] = []
    try:
        # A copy of its own: the models are popped and the hardware set below, and the
        # profile is shared by every device of a pass (a rollout over two hardware classes
        # once pushed documents whose digest no longer matched their content).
        doc = copy.deepcopy(profile(dev.profile))
    except ProfileError as exc:
        raise RenderError(dev.id, [str(exc)]) from exc
    for scope in SCOPES:
        layer = layers.get((scope, dev.scope_key(scope)))
        if not layer:
            continue
        pinned = pinned_keys_set(layer)
        if pinned:
            problems.append(f"{scope} override {dev.scope_key(scope)!r} sets "
                            f"{', '.join(pinned)}, which only enrollment sets")
        doc = merge(doc, layer)
    wanted = doc.pop("models", None) or {}
    models: dict[str, Any] = {}
    if not isinstance(wanted, Mapping):
        problems.append("models must map a name to a catalogue model or {url, sha256, size}")
        wanted = {}
    if dev.hardware:  # what enrollment recorded for this box wins over its profile's
        doc["hardware"] = dev.hardware
    hardware = str(doc.get("hardware") or "")
    for name, ref in wanted.items():
        item = _model_item(str(name), ref, hardware, catalog, model_base_url, problems)
        if item is not None:
            models[str(name)] = item
    missing = sorted(model_refs(doc) - set(models))
    if missing:
        problems.append(f"model:// names without a model: {missing}")
    if problems:
        raise RenderError(dev.id, problems)
    standin = {name: f"/nonexistent/model-{name}" for name in models}
    try:
        validate_config(compose({"device_id": dev.id}, resolve_models(doc, standin)))
    except ConfigError as exc:
        raise RenderError(dev.id, [p.removeprefix("?: ") for p in exc.problems]) from exc
    out = Rendered(doc, models, content_digest(doc, models))
    size = len(msgspec.json.encode(out.as_json()))
    if size > MAX_CONFIG_BYTES - 4096:  # room for the envelope around it
        raise RenderError(dev.id, [f"the document is {size} bytes; boxes refuse more than "
                                   f"{MAX_CONFIG_BYTES - 4096}"])
    return out


def _model_item(name: str, ref: Any, hardware: str, catalog: Sequence[CatalogModel],
                base_url: str, problems: list[str]) -> dict[str, Any] | None:
    if isinstance(ref, Mapping):
        try:
            return msgspec.to_builtins(msgspec.convert(dict(ref), ModelSpec))
        except msgspec.ValidationError as exc:
            problems.append(f"model {name}: {exc}")
            return None
    found = choose_variant(catalog, str(ref), hardware)
    if found is None:
        problems.append(f"model {name}: no catalogue model {ref!r} for hardware "
                        f"{hardware or '(any)'}")
        return None
    if not base_url:
        problems.append("config_model_base_url is not set: boxes cannot fetch models")
        return None
    return {"url": f"{base_url.rstrip('/')}/models/{found.sha256}", "sha256": found.sha256,
            "size": found.size}
