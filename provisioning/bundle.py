"""A device bundle on disk: the folder a technician copies to the box (stdlib only, so the
technician's laptop needs nothing of the hub).

Every file is written 0600 through a temporary file, the folder 0700: credentials live here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from dcor_fs import write_atomic

AGENT_CONFIG_NAME: Final = "agent.yaml"
PASSWORD_FILE: Final = "mqtt-password"
CA_FILE: Final = "ca.crt"
HUB_KEY_FILE: Final = "hub-signing.pub"
_NAMES: Final = frozenset({AGENT_CONFIG_NAME, PASSWORD_FILE, CA_FILE, HUB_KEY_FILE})


class BundleExistsError(FileExistsError):
    """The bundle folder already holds an enrollment; re-run with ``force`` to replace it."""


def write_bundle(out_dir: Path, files: Mapping[str, str], *, force: bool = False) -> Path:
    """Write ``files`` (name -> text) into ``out_dir``; refuse names we do not know, so a
    hub answer can never write outside the folder."""
    unknown = set(files) - _NAMES
    if unknown:
        raise ValueError(f"unexpected bundle files {sorted(unknown)}")
    if (out_dir / AGENT_CONFIG_NAME).exists() and not force:
        raise BundleExistsError(f"{out_dir} already holds a bundle; pass --force to "
                                "replace it")
    out_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(out_dir, 0o700)
    for name, text in files.items():
        write_private(out_dir / name, text)
    return out_dir


def write_private(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"), mode=0o600)
