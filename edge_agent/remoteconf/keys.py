"""The hub's public key, from the file the enrollment bundle put beside agent.yaml."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dcor_wire.signing import public_key_from_pem


class HubKeyError(ValueError):
    """The configured hub key file is missing, unsafe or not an Ed25519 public key."""


def load_hub_key(path: Path | None) -> Ed25519PublicKey | None:
    """None when no key is configured (the box then refuses every desired configuration).

    A key others may write is refused: whoever can replace it can sign the box's config.
    """
    if path is None:
        return None
    try:
        mode = os.stat(path).st_mode
        pem = path.read_bytes()
    except OSError as exc:
        raise HubKeyError(f"cannot read the hub key {path}: {exc.strerror}") from exc
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise HubKeyError(f"{path} is writable by group or others (mode "
                          f"{oct(mode & 0o777)}): run 'chmod 644 {path}'")
    try:
        return public_key_from_pem(pem)
    except ValueError as exc:
        raise HubKeyError(f"{path}: {exc}") from exc
