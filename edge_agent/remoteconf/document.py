"""Checks of one received ``config/desired`` message, in order, and the effective
configuration it gives (pure: the key, the current version and the box's own configuration
are arguments).

Refused, with the code the report carries: ``oversized``, ``no_hub_key`` (the box has no hub
key to check with), ``unsigned``, ``malformed``, ``wrong_key``, ``bad_signature`` (altered),
``bad_digest``, ``other_device``, ``stale_version`` (not newer than the one in force or the
last one seen: a replay), ``invalid`` (not a valid agent configuration).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dcor_wire.configdoc import ConfigDoc, DocError, compose, parse_doc, resolve_models
from dcor_wire.payloads import MAX_CONFIG_BYTES
from dcor_wire.signing import SignatureError, verify
from edge_agent.config import AgentConfig, ConfigError, validate_config


class Rejection(Exception):
    """A document the box will not apply. ``version``/``digest``: what it claimed, if known."""

    def __init__(self, reason: str, detail: str, version: int = 0, digest: str = "",
                 rollout: str = "", signed: bool = False) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.version = version
        self.digest = digest
        self.rollout = rollout
        self.signed = signed  # the hub's signature held: version and digest are the hub's


@dataclass(frozen=True)
class Received:
    doc: ConfigDoc
    envelope: dict[str, Any]


def _claimed(data: bytes) -> tuple[int, str]:
    """Best-effort version and digest of a message being refused, for the report."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return 0, ""
    if not isinstance(body, dict):
        return 0, ""
    inner: dict[str, Any] = body["doc"] if isinstance(body.get("doc"), dict) else body
    version, digest = inner.get("version"), inner.get("digest")
    if not isinstance(version, int) or isinstance(version, bool) or not 0 < version < 2**53:
        version = 0
    return version, (digest[:80] if isinstance(digest, str) else "")


def check_message(data: bytes, *, device_id: str, public_key: Ed25519PublicKey | None,
                  current: tuple[int, str], seen: tuple[int, str]) -> Received | None:
    """The document to apply; None for a redelivery of one already handled; ``Rejection``.

    ``current`` and ``seen`` are (version, digest) of the document in force and of the last
    one handled (applied or not).
    """
    if len(data) > MAX_CONFIG_BYTES:
        raise Rejection("oversized", f"{len(data)} bytes > {MAX_CONFIG_BYTES}", *_claimed(data))
    version, digest = _claimed(data)
    if public_key is None:
        raise Rejection("no_hub_key", "this box has no hub public key (hub_public_key_file) "
                                      "to check signatures with", version, digest)
    try:
        body = json.loads(data)
        raw = verify(body if isinstance(body, dict) else data, public_key)
    except SignatureError as exc:
        raise Rejection(exc.reason, str(exc), version, digest) from exc
    except (ValueError, RecursionError) as exc:
        raise Rejection("malformed", f"not JSON: {str(exc)[:120]}", version, digest) from exc
    try:
        doc = parse_doc(raw)
    except DocError as exc:
        raise Rejection(exc.reason, str(exc), version, digest, signed=True) from exc
    if doc.device_id != device_id:
        # Not ours: its version says nothing about this box's sequence (signed=False).
        raise Rejection("other_device", f"the document is for {doc.device_id}, this box is "
                                        f"{device_id}", doc.version, doc.digest, doc.rollout)
    if (doc.version, doc.digest) in (current, seen):
        return None
    newest = max(current[0], seen[0])
    if doc.version <= newest:
        raise Rejection("stale_version", f"version {doc.version} is not newer than {newest}",
                        doc.version, doc.digest, doc.rollout, signed=True)
    return Received(doc, body)


def effective_config(local: AgentConfig, doc: ConfigDoc,
                     model_paths: Mapping[str, Path] | None = None) -> AgentConfig:
    """The box's configuration with ``doc`` over it. Without ``model_paths`` the model files
    are stand-ins (to validate before anything is downloaded). ``Rejection`` when invalid."""
    paths = {name: str(model_paths[name]) if model_paths else f"/nonexistent/model-{name}"
             for name in doc.models}
    try:
        merged = compose(local.model_dump(mode="json"), resolve_models(doc.config, paths))
        return validate_config(merged)
    except ConfigError as exc:
        detail = "; ".join(p.removeprefix("?: ") for p in exc.problems)
        raise Rejection("invalid", detail[:900], doc.version, doc.digest, doc.rollout,
                        signed=True) from exc
    except KeyError as exc:  # a model:// name without a path (parse_doc checks this first)
        raise Rejection("invalid", f"unknown model {exc}", doc.version, doc.digest,
                        doc.rollout, signed=True) from exc
