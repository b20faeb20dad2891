"""The box's configuration state on disk: what is in force, the last known good, what was seen.

Three small JSON files in the agent's state folder (beside the outbox), each replaced
atomically (temporary file, fsync, rename, fsync of the folder), so a power cut or a SIGKILL
leaves each one either before or after a change, never half written:

- ``active.json``  the signed envelope in force, ``confirmed`` (false while on trial) and
                   ``boots`` (restarts during the trial). Writing it is the commit point of an
                   apply: at boot the agent runs exactly what it names, or its own agent.yaml
                   when it is absent.
- ``good.json``    the last envelope that passed its trial (absent: agent.yaml is the good one).
- ``seen.json``    version and digest of the newest document refused or given back, so its
                   retained copy, delivered again on each reconnect, is not tried twice.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcor_fs import write_atomic

ACTIVE = "active.json"
GOOD = "good.json"
SEEN = "seen.json"


@dataclass(frozen=True)
class Active:
    envelope: dict[str, Any]
    confirmed: bool
    boots: int


class ConfigStore:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder

    # --- reading --------------------------------------------------------------------------

    def active(self) -> Active | None:
        data = self._read(ACTIVE)
        if data is None or not isinstance(data.get("envelope"), dict):
            return None
        return Active(data["envelope"], bool(data.get("confirmed")), int(data.get("boots", 0)))

    def good(self) -> dict[str, Any] | None:
        data = self._read(GOOD)
        env = data.get("envelope") if data else None
        return env if isinstance(env, dict) else None

    def seen(self) -> tuple[int, str]:
        data = self._read(SEEN) or {}
        return int(data.get("version", 0)), str(data.get("digest", ""))

    # --- changing -------------------------------------------------------------------------

    def begin_trial(self, envelope: dict[str, Any]) -> None:
        """The commit point of an apply: from here a restart runs the new configuration."""
        self._write(ACTIVE, {"envelope": envelope, "confirmed": False, "boots": 0})

    def count_boot(self, active: Active) -> None:
        self._write(ACTIVE, {"envelope": active.envelope, "confirmed": active.confirmed,
                             "boots": active.boots + 1})

    def confirm(self, envelope: dict[str, Any]) -> None:
        """Keep it: it becomes the last known good, then the active one is marked so."""
        self._write(GOOD, {"envelope": envelope})
        self._write(ACTIVE, {"envelope": envelope, "confirmed": True, "boots": 0})

    def adopt(self, envelope: dict[str, Any]) -> None:
        """In force at once, no trial (same content as the good one under a new version)."""
        self.confirm(envelope)

    def rollback(self) -> dict[str, Any] | None:
        """Make the last known good the active one again; returns it (None: agent.yaml)."""
        good = self.good()
        if good is None:
            self._remove(ACTIVE)
        else:
            self._write(ACTIVE, {"envelope": good, "confirmed": True, "boots": 0})
        return good

    def note_seen(self, version: int, digest: str) -> None:
        self._write(SEEN, {"version": version, "digest": digest})

    # --- files ----------------------------------------------------------------------------

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.folder / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # Cannot happen through _write (rename is atomic); a hand-edited file is ignored.
            return None
        return data if isinstance(data, dict) else None

    def _write(self, name: str, data: dict[str, Any]) -> None:
        body = json.dumps(data, separators=(",", ":")).encode("utf-8")
        write_atomic(self.folder / name, body)
        self._sync_dir()

    def _remove(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)
        self._sync_dir()

    def _sync_dir(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
