"""Device profiles from ``firmware_configs/profiles``: list them, render one into a document.

A profile is a partial agent configuration composed with ``extends:`` (see
``firmware_configs/README.md``). Rendering resolves the ``extends`` chain and merges overrides
on top; it reads files but changes nothing, so enrollment and (later) the hub's config
rendering share it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dcor_wire.configdoc import merge
from edge_agent.yamlconf import ConfigFileError, Positions, load_with_positions

PROFILES_ENV = "DCOR_PROFILES_DIR"
# Files that other profiles extend but that are not profiles a device can be given.
BASE_FILES = frozenset({"common"})
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class ProfileError(ValueError):
    """A profile is unknown or cannot be read; the message says which ones exist."""


def default_profiles_dir() -> Path:
    """``$DCOR_PROFILES_DIR``, else ``firmware_configs/profiles`` of this source tree."""
    env = os.environ.get(PROFILES_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "firmware_configs" / "profiles"


def list_profiles(profiles_dir: Path | None = None) -> list[str]:
    """Names of the profiles a device can be enrolled with, sorted."""
    folder = profiles_dir or default_profiles_dir()
    if not folder.is_dir():
        raise ProfileError(f"profile folder {folder} does not exist; set {PROFILES_ENV} or "
                           "run from a dcor-fleet checkout")
    return sorted(p.stem for p in folder.glob("*.yaml")
                  if p.stem not in BASE_FILES and _NAME_RE.match(p.stem))


def profile_path(name: str, profiles_dir: Path | None = None) -> Path:
    """The file of profile ``name``; a ``ProfileError`` listing the known ones otherwise."""
    folder = profiles_dir or default_profiles_dir()
    available = list_profiles(folder)
    if name not in available:
        # The name check also keeps '../x' and '/etc/x' out of the path.
        raise ProfileError(f"unknown profile {name!r}; available: {', '.join(available) or '-'}"
                           f" (in {folder})")
    return folder / f"{name}.yaml"


def load_profile(name: str, profiles_dir: Path | None = None) -> tuple[dict[str, Any],
                                                                         Positions]:
    """The profile with its ``extends`` chain resolved, and the file:line of each value."""
    path = profile_path(name, profiles_dir)
    try:
        data, positions = load_with_positions(path)
    except ConfigFileError as exc:
        raise ProfileError(f"profile {name!r} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile must be a mapping of settings")
    return data, positions


def render_profile(name: str, overrides: Mapping[str, Any] | None = None,
                   profiles_dir: Path | None = None) -> dict[str, Any]:
    """Profile ``name`` flattened (no ``extends``) with ``overrides`` merged on top.

    Merging follows ``extends``: mappings merge deeply, the override wins, lists are replaced
    whole. The result is a new dict; neither the files nor ``overrides`` are changed.
    """
    data, _ = load_profile(name, profiles_dir)
    return merge(data, dict(overrides or {}))


