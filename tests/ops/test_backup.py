"""``dcor-hub backup`` / ``restore`` with a SQLite registry, media and the security folder:
a copy taken while the registry is open, restored onto a fresh hub, refusals that change
nothing (a registry with devices, a damaged or interrupted backup), and pruning."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hub.ops.backup import MANIFEST, BackupError, backup, prune, restore, verify
from hub.registry.db import open_registry
from hub.settings import HubSettings, load_settings
from provisioning.registry_ops import SiteSpec, register_device


def hub_at(root: Path) -> tuple[Path, HubSettings]:
    cfg = {"data_dir": str(root / "data"), "security_dir": str(root / "security"),
           "secret_key": "k" * 64}
    root.mkdir(parents=True, exist_ok=True)
    path = root / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, load_settings(path, env={})


def devices_in(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM devices ORDER BY id")]


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def old_hub(tmp_path):
    """A hub with two devices, three media files and key material; the registry stays open
    (its WAL not checkpointed) while the backup runs."""
    path, settings = hub_at(tmp_path / "old")
    settings.data_dir.mkdir(parents=True)
    registry = open_registry(settings.resolved_database_url())
    for dev in ("beji-pole-01", "beji-pole-02"):
        register_device(registry, dev, SiteSpec(f"site-{dev}", "Beji", "Kemiri Muka"),
                        "rpi4-cctv")
    media = settings.data_dir / "media"
    for rel, data in {"snapshots/beji-pole-01/cam1/1-a.jpg": b"\xff\xd8jpeg-1",
                      "snapshots/beji-pole-02/cam1/2-b.jpg": b"\xff\xd8jpeg-2",
                      "clips/beji-pole-01/cam1-1-2.mp4": b"mp4" * 1000}.items():
        (media / rel).parent.mkdir(parents=True, exist_ok=True)
        (media / rel).write_bytes(data)
    sec = settings.resolved_security_dir()
    sec.mkdir(mode=0o700)
    (sec / "ca.crt").write_text("CERT")
    (sec / "ca.key").write_text("KEY")
    os.chmod(sec / "ca.crt", 0o644)
    os.chmod(sec / "ca.key", 0o600)
    yield path, settings
    registry.close()


def test_backup_then_restore_onto_a_fresh_hub(tmp_path, old_hub):
    path, settings = old_hub
    proc = subprocess.run([sys.executable, "-m", "hub.cli", "--config", str(path), "backup",
                           str(tmp_path / "backups")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    folder = next((tmp_path / "backups").iterdir())
    assert f"dcor-hub backup: {folder}" in proc.stdout
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o077 == 0 for p in folder.rglob("*") if p.is_file())
    manifest = verify(folder)
    assert manifest["database"] == "sqlite"
    assert {"registry.sqlite", "security/ca.key", "hub.yaml",
            "media/clips/beji-pole-01/cam1-1-2.mp4"} <= set(manifest["files"])
    assert devices_in(folder / "registry.sqlite") == ["beji-pole-01", "beji-pole-02"]

    _new_path, new = hub_at(tmp_path / "new")
    out = restore(new, folder)
    assert out.moved_aside == ()
    assert devices_in(new.data_dir / "registry.sqlite") == ["beji-pole-01", "beji-pole-02"]
    assert tree(new.data_dir / "media") == tree(settings.data_dir / "media")
    sec = new.resolved_security_dir()
    assert tree(sec) == tree(settings.resolved_security_dir())
    assert (sec / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (sec / "ca.crt").stat().st_mode & 0o777 == 0o644
    # The restored registry is one the hub opens as it is.
    reg = open_registry(new.resolved_database_url())
    reg.close()


def test_restore_refuses_to_overwrite_and_force_moves_aside(tmp_path, old_hub):
    _path, settings = old_hub
    folder = backup(settings, tmp_path / "b").folder
    later = open_registry(settings.resolved_database_url())
    register_device(later, "beji-pole-03", SiteSpec("site-3", "Beji", "Beji Timur"),
                    "rpi4-cctv")
    later.close()
    before = tree(settings.data_dir / "media")
    with pytest.raises(BackupError, match="already holds devices"):
        restore(settings, folder)
    assert "beji-pole-03" in devices_in(settings.data_dir / "registry.sqlite")
    assert tree(settings.data_dir / "media") == before
    out = restore(settings, folder, force=True, now=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    assert devices_in(settings.data_dir / "registry.sqlite") == ["beji-pole-01",
                                                                "beji-pole-02"]
    aside = {p.name for p in out.moved_aside}
    assert "registry.sqlite.before-restore-20260102T000000Z" in aside
    assert "media.before-restore-20260102T000000Z" in aside
    assert "beji-pole-03" in devices_in(
        settings.data_dir / "registry.sqlite.before-restore-20260102T000000Z")


@pytest.mark.parametrize("damage", ["flip", "delete", "no_manifest"])
def test_a_damaged_or_interrupted_backup_is_refused_and_nothing_changes(tmp_path, old_hub,
                                                                        damage):
    _path, settings = old_hub
    folder = backup(settings, tmp_path / "b").folder
    clip = folder / "media/clips/beji-pole-01/cam1-1-2.mp4"
    if damage == "flip":
        clip.write_bytes(b"MP4" + clip.read_bytes()[3:])
    elif damage == "delete":
        clip.unlink()
    else:
        (folder / MANIFEST).unlink()
    _new_path, new = hub_at(tmp_path / "new")
    with pytest.raises(BackupError, match=r"damaged|interrupted"):
        restore(new, folder)
    assert not new.data_dir.exists()


def test_prune_keeps_the_newest_complete_backups(tmp_path, old_hub):
    _path, settings = old_hub
    parent = tmp_path / "b"
    made = [backup(settings, parent, now=dt.datetime(2026, 1, d, tzinfo=dt.UTC)).folder
            for d in (1, 2, 3, 4)]
    (parent / "dcor-hub-20260103T120000Z").mkdir()  # interrupted, older than the newest
    gone = prune(parent, 2)
    assert sorted(p.name for p in parent.iterdir()) == [made[2].name, made[3].name]
    assert len(gone) == 3
    assert json.loads((made[3] / MANIFEST).read_text())["format"] == 1
