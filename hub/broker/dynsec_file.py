"""The dynamic-security plugin's initial JSON file, written without ``mosquitto_ctrl``.

``mosquitto_ctrl dynsec init`` asks for the password on a terminal; this writes the same
format (PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt: what Mosquitto 2.0's plugin
writes and expects) so tests, the demo and ``dcor-provision init-hub`` need no prompt.
The plugin owns the file afterwards: it rewrites it on every change made through
``$CONTROL``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from dcor_fs import write_atomic
from hub.broker.acl import DEFAULT_ACL_ACCESS, Role, admin_role, hub_role

PBKDF2_ITERATIONS: Final = 101  # the plugin's own choice in Mosquitto 2.0
SALT_BYTES: Final = 12
HASH_BYTES: Final = 64


@dataclass(frozen=True)
class BrokerClient:
    username: str
    password: str
    roles: tuple[str, ...]
    textname: str = ""


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS,
                                 HASH_BYTES)
    return {"password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(), "iterations": PBKDF2_ITERATIONS}


def initial_config(clients: Iterable[BrokerClient],
                   roles: Iterable[Role] = ()) -> dict[str, Any]:
    """A complete plugin document: the given clients, the hub and admin roles plus ``roles``,
    and the deny-by-default ACL access."""
    all_roles = {r.name: r for r in (admin_role(), hub_role(), *roles)}
    for c in clients:
        missing = set(c.roles) - set(all_roles)
        if missing:
            raise ValueError(f"client {c.username!r} names unknown roles {sorted(missing)}")
    return {
        "clients": [{"username": c.username, "textname": c.textname or c.username,
                     **hash_password(c.password),
                     "roles": [{"rolename": r} for r in c.roles]} for c in clients],
        "roles": [r.to_json() for r in all_roles.values()],
        "groups": [],
        "defaultACLAccess": dict(DEFAULT_ACL_ACCESS),
    }


def write_config(path: Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` readable by its owner only (it holds password hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, json.dumps(doc, indent=1).encode("utf-8"), mode=0o600)
