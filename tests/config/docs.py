"""Keys and signed documents for the configuration tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dcor_wire.canonical import canonical_json
from dcor_wire.configdoc import content_digest
from dcor_wire.signing import sign
from hub.rollout.documents import build_envelope
from provisioning import pki


def write_keys(folder: Path) -> tuple[Ed25519PrivateKey, Path, Path]:
    """A hub signing key (0600) and its public half (0644), as init-hub writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    key = pki.make_signing_key()
    priv, pub = folder / "signing.key", folder / "signing.pub"
    pki.write_file(priv, pki.private_pem(key), 0o600)
    pki.write_file(pub, pki.public_pem(key), 0o644)
    os.chmod(pub, 0o644)
    return key, priv, pub


def planned(config: dict[str, Any], models: dict[str, Any] | None = None) -> dict[str, Any]:
    models = models or {}
    return {"config": config, "models": models, "digest": content_digest(config, models)}


def envelope(key: Ed25519PrivateKey, device_id: str, version: int, config: dict[str, Any],
             *, models: dict[str, Any] | None = None, grace_s: float = 5.0,
             settle_s: float = 0.5, rollout: str = "", kind: str = "push") -> bytes:
    return build_envelope(key, device_id=device_id, version=version,
                          planned=planned(config, models),
                          apply={"grace_s": grace_s, "settle_s": settle_s}, rollout=rollout,
                          kind=kind)


def raw_envelope(key: Ed25519PrivateKey, device_id: str, version: int,
                 config: dict[str, Any]) -> bytes:
    """Signed without the hub's own checks: what a hub bug (or a stolen key) could send."""
    doc = {"v": 1, "device_id": device_id, "version": version, "issued_ms": 0,
           "digest": content_digest(config, {}), "config": config, "models": {},
           "apply": {"grace_s": 5.0, "settle_s": 0.5}, "rollout": "", "kind": "push"}
    return canonical_json(sign(doc, key))


def tamper(body: bytes, **changes: Any) -> bytes:
    """The envelope with its document changed after signing."""
    env = json.loads(body)
    env["doc"]["config"].update(changes)
    return canonical_json(env)
