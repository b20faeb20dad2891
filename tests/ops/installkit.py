"""Helpers of the install and unit tests: a throwaway root folder that looks enough like a
box for ``useradd --root``, and ``systemd-analyze`` on unit files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO.parent / "shared" / "assets"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="useradd --root needs root")
needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze not installed")


def fake_root(root: Path, marker: str | None = None) -> Path:
    """Minimal account files (root, and the video/render groups a box has) and, optionally,
    the file by which the installer recognises the platform (etc/rpi-issue, ...)."""
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\nvideo:x:44:\nrender:x:105:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\nvideo:!::\nrender:!::\n")
    for f in ("shadow", "gshadow"):
        os.chmod(etc / f, 0o640)
    if Path("/etc/login.defs").exists():
        shutil.copy("/etc/login.defs", etc / "login.defs")
    if marker:
        (root / marker).parent.mkdir(parents=True, exist_ok=True)
        (root / marker).write_text("fake\n")
    return root


def passwd_entry(root: Path, user: str) -> list[str] | None:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return fields
    return None


def group_members(root: Path, group: str) -> list[str]:
    for line in (root / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == group:
            return [m for m in fields[3].split(",") if m]
    return []


def mode_owner(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_mode & 0o7777, st.st_uid, st.st_gid


def verify_unit(unit: Path, replace: dict[str, str], workdir: Path,
                dropins: list[Path] = ()) -> tuple[int, str, str]:
    """``systemd-analyze verify`` on a copy whose program paths point at files that exist
    here; returns (exit code, output, the rendered text)."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = unit.read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    target = workdir / unit.name
    target.write_text(text)
    if dropins:
        d = workdir / f"{unit.name}.d"
        d.mkdir(exist_ok=True)
        for p in dropins:
            shutil.copy(p, d / p.name)
    proc = subprocess.run(["systemd-analyze", "verify", str(target)], capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr, text


def exposure(unit: Path) -> float:
    """``systemd-analyze security --offline``'s overall exposure (0 best, 10 worst)."""
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                          capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout + proc.stderr)
    assert m, proc.stdout + proc.stderr
    return float(m.group(1))


def stub_executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path
