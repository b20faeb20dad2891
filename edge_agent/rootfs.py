"""File operations against a target root folder: ``/`` on a box, a throwaway folder in tests.

Users and groups are looked up in the target's own ``etc/passwd`` and ``etc/group`` (not the
host's), and created with ``useradd --root``, so the same code installs into a box or into a
folder. Files are written through a temporary file and renamed, with owner and mode set
before the rename: a secret is never briefly readable by others.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dcor_fs import write_atomic


class RootFsError(RuntimeError):
    """A step on the target root failed; the message says which and what to do."""


@dataclass(frozen=True)
class RootFs:
    root: Path

    @property
    def is_host(self) -> bool:
        return self.root.resolve() == Path("/")

    def path(self, absolute: str | Path) -> Path:
        """``/etc/x`` on the target, as a path on this machine."""
        return self.root / str(absolute).lstrip("/")

    # --- users and groups ------------------------------------------------------------
    def _table(self, name: str) -> dict[str, list[str]]:
        try:
            text = self.path(f"/etc/{name}").read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        return {f[0]: f for f in (ln.split(":") for ln in text.splitlines()) if len(f) >= 3}

    def uid(self, user: str) -> int | None:
        row = self._table("passwd").get(user)
        return int(row[2]) if row else None

    def gid(self, group: str) -> int | None:
        row = self._table("group").get(group)
        return int(row[2]) if row else None

    def groups_present(self, names: tuple[str, ...]) -> list[str]:
        table = self._table("group")
        return [n for n in names if n in table]

    def ensure_system_user(self, user: str, home: str, groups: list[str]) -> bool:
        """Create a system user with its own group (True), or add the missing supplementary
        groups to an existing one (False)."""
        base = ["--root", str(self.root.resolve())]
        if self.uid(user) is None:
            cmd = ["useradd", *base, "--system", "--user-group", "--home-dir", home,
                   "--no-create-home", "--shell", "/usr/sbin/nologin",
                   "--comment", "dcor-fleet edge agent"]
            if groups:
                cmd += ["--groups", ",".join(groups)]
            _run([*cmd, user])
            return True
        if groups:
            _run(["usermod", *base, "--append", "--groups", ",".join(groups), user])
        return False

    def owner(self, user: str, group: str | None = None) -> tuple[int, int]:
        uid = self.uid(user)
        gid = self.gid(group or user)
        if uid is None or gid is None:
            raise RootFsError(f"no user {user!r} / group {group or user!r} in "
                              f"{self.path('/etc/passwd')}")
        return uid, gid

    # --- files and folders -----------------------------------------------------------
    def mkdir(self, absolute: str, mode: int, owner: tuple[int, int] = (0, 0)) -> Path:
        target = self.path(absolute)
        target.mkdir(parents=True, exist_ok=True)
        os.chown(target, *owner)
        os.chmod(target, mode)
        return target

    def write(self, absolute: str, data: bytes, mode: int,
              owner: tuple[int, int] = (0, 0)) -> Path:
        target = self.path(absolute)
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(target, data, mode=mode, owner=owner)

    def copy(self, source: Path, absolute: str, mode: int,
             owner: tuple[int, int] = (0, 0)) -> Path:
        return self.write(absolute, source.read_bytes(), mode, owner)

    def remove_tree(self, absolute: str) -> None:
        shutil.rmtree(self.path(absolute), ignore_errors=True)


def _run(cmd: list[str]) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError as exc:
        raise RootFsError(f"{cmd[0]} not found (Debian package 'passwd'); install it and "
                          "run again") from exc
    if proc.returncode != 0:
        raise RootFsError(f"{' '.join(cmd)} failed ({proc.returncode}): "
                          f"{(proc.stderr or proc.stdout).strip()[:400]}")
