"""The hub's Ed25519 configuration-signing key (written by ``dcor-provision init-hub``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dcor_wire.signing import private_key_from_pem
from hub.settings import HubSettings

SIGNING_KEY_NAME = "signing.key"  # provisioning.hubinit.SIGNING_KEY


class SigningKeyError(ValueError):
    """The signing key is missing, readable by others, or not an Ed25519 key."""


def signing_key_path(settings: HubSettings) -> Path:
    return settings.config_signing_key_path or \
        settings.resolved_security_dir() / SIGNING_KEY_NAME


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Refuses a key file group or others can read: whoever reads it can configure every
    box of the fleet."""
    try:
        mode = os.stat(path).st_mode
        pem = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the config-signing key {path}: {exc.strerror} "
                              "(run 'dcor-provision init-hub', or set "
                              "config_signing_key_path)") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError(f"{path} is readable by group or others (mode "
                              f"{oct(mode & 0o777)}): run 'chmod 600 {path}'")
    try:
        return private_key_from_pem(pem)
    except ValueError as exc:
        raise SigningKeyError(f"{path}: {exc}") from exc
