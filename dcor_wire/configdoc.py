"""The desired-configuration document (``config/desired``): its schema and the rules both
sides apply to it. Pure.

A document, signed by the hub (``dcor_wire.signing``), says for one device::

    {"v": 1, "device_id": "...", "version": 7, "issued_ms": ..., "digest": "sha256:...",
     "config": {...agent.yaml keys...}, "models": {"detect": {"url", "sha256", "size"}},
     "apply": {"grace_s": 60, "settle_s": 10}, "rollout": "r-...", "kind": "push"}

- ``version`` is monotonic per device; the agent refuses anything not newer than what it has.
- ``digest`` is ``sha256:`` of the canonical JSON of ``{"config": ..., "models": ...}``: the
  content id the hub compares desired against reported with.
- ``config`` is merged over the box's own agent.yaml (mappings deeply, lists whole); the keys
  in ``PINNED`` (identity, broker address and credentials, local paths) stay the box's own and
  a document that sets one is refused: a push must never cut a box off its hub.
- A string ``model://<name>`` anywhere in ``config`` stands for the local path of the file of
  ``models[name]``, fetched and checked by the agent before the document is applied.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Final, Literal

import msgspec

from dcor_wire.signing import digest

PINNED: Final[tuple[tuple[str, ...], ...]] = (
    ("device_id",), ("data_dir",), ("hub_public_key_file",), ("outbox", "path"),
    ("mqtt", "host"), ("mqtt", "port"), ("mqtt", "username"), ("mqtt", "password_file"),
    ("mqtt", "tls"), ("mqtt", "require_tls"),
)
MODEL_REF: Final = "model://"
MAX_MODEL_BYTES: Final = 2 * 1024**3
_Hex64 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
_Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class ModelSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A model file: where the box fetches it, and what it must be."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    sha256: _Hex64
    size: Annotated[int, msgspec.Meta(ge=1, le=MAX_MODEL_BYTES)]


class ApplySpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """How long the box watches a new configuration before it keeps it (``settle_s`` of
    continuous health), or gives it back (not healthy by ``grace_s``)."""

    grace_s: Annotated[float, msgspec.Meta(ge=1.0, le=3600.0)] = 60.0
    settle_s: Annotated[float, msgspec.Meta(ge=0.0, le=600.0)] = 10.0


class ConfigDoc(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    v: Annotated[int, msgspec.Meta(ge=1, le=1)] = 1
    device_id: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{2,62}$")]
    version: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    issued_ms: Annotated[int, msgspec.Meta(ge=0, le=2**53)]
    digest: Annotated[str, msgspec.Meta(pattern=r"^sha256:[0-9a-f]{64}$")]
    config: dict[str, Any]
    models: dict[_Name, ModelSpec] = {}
    apply: ApplySpec = ApplySpec()
    rollout: Annotated[str, msgspec.Meta(max_length=64)] = ""
    kind: Literal["push", "revert"] = "push"


class DocError(ValueError):
    """The document breaks the schema or the rules above; ``reason`` is a report code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def content_digest(config: Mapping[str, Any], models: Mapping[str, Any]) -> str:
    return digest({"config": config, "models": models})


def models_json(models: Mapping[str, ModelSpec]) -> dict[str, Any]:
    return {name: msgspec.to_builtins(m) for name, m in models.items()}


def parse_doc(doc: Mapping[str, Any]) -> ConfigDoc:
    """Schema, the content digest and the pinned keys; ``DocError`` on the first problem."""
    try:
        parsed = msgspec.convert(dict(doc), ConfigDoc)
    except msgspec.ValidationError as exc:
        raise DocError("malformed", f"document schema: {exc}") from exc
    if content_digest(parsed.config, models_json(parsed.models)) != parsed.digest:
        raise DocError("bad_digest", "the digest does not match the document's content")
    pinned = pinned_keys_set(parsed.config)
    if pinned:
        raise DocError("invalid", f"sets {', '.join(pinned)}: set at enrollment on the box, "
                                  "never by a configuration push")
    missing = sorted(model_refs(parsed.config) - set(parsed.models))
    if missing:
        raise DocError("invalid", f"refers to models not in the document: {missing}")
    return parsed


def pinned_keys_set(config: Mapping[str, Any]) -> list[str]:
    out = []
    for path in PINNED:
        node: Any = config
        for part in path:
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            out.append(".".join(path))
    return out


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge into a new dict: ``over`` wins, mappings merge, lists are replaced whole."""
    out: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def compose(local: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The effective configuration: ``config`` over the box's own, pinned keys kept local."""
    out = merge(local, config)
    for path in PINNED:
        src: Any = local
        for part in path:
            src = src.get(part) if isinstance(src, Mapping) else None
        parent = out
        for part in path[:-1]:
            nxt = parent.get(part)
            if not isinstance(nxt, dict):
                break
            parent = nxt
        else:
            if src is None:
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = copy.deepcopy(src)
    return out


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _strings(v)


def model_refs(config: Mapping[str, Any]) -> set[str]:
    return {s[len(MODEL_REF):] for s in _strings(config) if s.startswith(MODEL_REF)}


def resolve_models(node: Any, paths: Mapping[str, str]) -> Any:
    """A copy of ``node`` with each ``model://<name>`` replaced by ``paths[name]``."""
    if isinstance(node, str):
        if node.startswith(MODEL_REF):
            return paths[node[len(MODEL_REF):]]
        return node
    if isinstance(node, Mapping):
        return {k: resolve_models(v, paths) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [resolve_models(v, paths) for v in node]
    return node
