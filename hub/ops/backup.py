"""``dcor-hub backup DIR`` / ``dcor-hub restore BACKUP``: the registry, the media and the hub's
security material, in one folder with a manifest of sha256 digests.

The registry is copied consistently while the hub runs: SQLite through its online backup API,
PostgreSQL with ``pg_dump --format=custom``. The manifest is written last, so a folder without
one is an interrupted backup and restore refuses it. Restore checks every digest first and
changes nothing when anything is wrong; what it replaces it moves aside (``*.before-restore-*``)
instead of deleting. InfluxDB has its own tool (``influxd backup -portable``,
docs/operations.md): its data is telemetry the boxes do not resend.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from hub.settings import HubSettings

MANIFEST: Final = "manifest.json"
FORMAT: Final = 1
SQLITE_NAME: Final = "registry.sqlite"
PG_NAME: Final = "registry.pgdump"


class BackupError(RuntimeError):
    """Backup or restore refused or failed; the message says why and what to do."""


@dataclass(frozen=True)
class Outcome:
    folder: Path
    files: int
    bytes: int
    database: str
    moved_aside: tuple[Path, ...] = ()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _db_kind(url: str) -> str:
    if url.startswith("sqlite"):
        return "sqlite"
    if url.startswith("postgresql"):
        return "postgresql"
    raise BackupError(f"cannot back up a {url.split(':', 1)[0]} registry (sqlite or postgresql)")


def _sqlite_path(url: str) -> Path:
    from sqlalchemy.engine import make_url

    db = make_url(url).database
    if not db or db == ":memory:":
        raise BackupError("the registry is an in-memory SQLite database: nothing to back up")
    return Path(db)


def _pg_args(url: str) -> tuple[list[str], dict[str, str]]:
    """libpq arguments for pg_dump / pg_restore; the password goes in the environment, never
    on the command line (where ``ps`` would show it)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    args = [f"--dbname={u.database}"]
    if u.host:
        args.append(f"--host={u.host}")
    if u.port:
        args.append(f"--port={u.port}")
    if u.username:
        args.append(f"--username={u.username}")
    env = {**os.environ, **({"PGPASSWORD": u.password} if u.password else {})}
    return args, env


def _run(cmd: list[str], env: dict[str, str]) -> None:
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                              timeout=3600)
    except FileNotFoundError as exc:
        raise BackupError(f"{cmd[0]} not found: apt-get install postgresql-client") from exc
    if proc.returncode != 0:
        raise BackupError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[:500]}")


def _copy_private(src: Path, dst: Path, mode: int, dir_mode: int = 0o700) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
        shutil.copyfileobj(inp, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def _private_file(path: Path) -> Path:
    """An empty file only its owner can read, made before anything is written into it."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


def _sqlite_copy(source: Path, target: Path) -> None:
    """One self-contained file (the WAL folded in), consistent while writers go on."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(_private_file(target))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def backup(settings: HubSettings, parent: Path, *, with_secrets: bool = True,
           config_file: Path | None = None, now: datetime | None = None) -> Outcome:
    """Write ``<parent>/dcor-hub-<UTC time>/`` (0700) and return what it holds."""
    from hub.registry.migrations import current_revision

    now = now or datetime.now(UTC)
    url = settings.resolved_database_url()
    kind = _db_kind(url)
    folder = parent / f"dcor-hub-{now.strftime('%Y%m%dT%H%M%SZ')}"
    parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError as exc:
        raise BackupError(f"{folder} exists already; wait a second or remove it") from exc
    files: dict[str, dict[str, Any]] = {}

    def add(rel: str, mode: int) -> None:
        p = folder / rel
        files[rel] = {"sha256": _sha256(p), "bytes": p.stat().st_size, "mode": mode}

    if kind == "sqlite":
        _sqlite_copy(_sqlite_path(url), folder / SQLITE_NAME)
        add(SQLITE_NAME, 0o600)
    else:
        args, env = _pg_args(url)
        _run(["pg_dump", "--format=custom", "--no-owner", f"--file={folder / PG_NAME}", *args],
             env)
        add(PG_NAME, 0o600)
    media = settings.data_dir / "media"
    for src in sorted(media.rglob("*")) if media.is_dir() else []:
        if src.is_file() and not src.name.endswith(".tmp"):
            rel = "media/" + src.relative_to(media).as_posix()
            _copy_private(src, folder / rel, 0o600)
            add(rel, 0o644)
    if with_secrets:
        sec = settings.resolved_security_dir()
        for src in sorted(sec.iterdir()) if sec.is_dir() else []:
            if src.is_file():
                mode = src.stat().st_mode & 0o777
                _copy_private(src, folder / "security" / src.name, 0o600)
                add(f"security/{src.name}", mode)
        if config_file is not None:
            _copy_private(config_file, folder / "hub.yaml", 0o600)
            add("hub.yaml", 0o600)
    manifest = {"format": FORMAT, "created": now.isoformat(), "database": kind,
                "revision": current_revision(url), "data_dir": str(settings.data_dir),
                "files": files}
    _private_file(folder / MANIFEST).write_text(json.dumps(manifest, indent=1),
                                                encoding="utf-8")
    return Outcome(folder, len(files), sum(f["bytes"] for f in files.values()), kind)


def prune(parent: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` complete backups in ``parent`` (by folder name, which
    is the UTC time); interrupted ones (no manifest) older than the newest are deleted too."""
    found = sorted(p for p in parent.glob("dcor-hub-*") if p.is_dir())
    complete = [p for p in found if (p / MANIFEST).is_file()]
    keep_set = set(complete[-keep:]) if keep > 0 else set()
    newest = found[-1] if found else None
    gone = [p for p in found if p not in keep_set and p != newest]
    for p in gone:
        shutil.rmtree(p)
    return gone


def verify(folder: Path) -> dict[str, Any]:
    """The manifest, after checking every file's size and digest."""
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(f"{folder} has no {MANIFEST}: not a backup, or an interrupted "
                          "one") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{folder}: backup format {manifest.get('format')!r}, this hub reads "
                          f"{FORMAT}")
    bad = []
    for rel, meta in manifest["files"].items():
        p = folder / rel
        if ".." in Path(rel).parts or not p.is_file() or p.stat().st_size != meta["bytes"] \
                or _sha256(p) != meta["sha256"]:
            bad.append(rel)
    if bad:
        raise BackupError(f"{folder}: {len(bad)} file(s) missing or damaged, e.g. {bad[0]}; "
                          "nothing was restored")
    return manifest


def _aside(path: Path, stamp: str) -> Path:
    target = path.with_name(f"{path.name}.before-restore-{stamp}")
    path.rename(target)
    return target


def _has_devices(db: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return bool(conn.execute("SELECT count(*) FROM devices").fetchone()[0])
    except sqlite3.Error:
        return False


def restore(settings: HubSettings, folder: Path, *, force: bool = False,
            now: datetime | None = None) -> Outcome:
    """Put a backup back. Stop the hub's services first (docs/operations.md)."""
    manifest = verify(folder)
    url = settings.resolved_database_url()
    kind = _db_kind(url)
    if kind != manifest["database"]:
        raise BackupError(f"the backup holds a {manifest['database']} registry, this hub uses "
                          f"{kind}: restore onto a hub configured like the old one, then move")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    files = manifest["files"]
    media = settings.data_dir / "media"
    security = settings.resolved_security_dir()
    db = _sqlite_path(url) if kind == "sqlite" else None
    # Refuse before touching anything.
    if not force:
        if db is not None and db.exists() and _has_devices(db):
            raise BackupError(f"{db} already holds devices; pass --force to replace it (it "
                              "is moved aside, not deleted)")
        if media.is_dir() and any(media.rglob("*")) and any(r.startswith("media/")
                                                            for r in files):
            raise BackupError(f"{media} is not empty; pass --force to replace it (moved aside)")
        for rel in (r for r in files if r.startswith("security/")):
            cur = security / rel.removeprefix("security/")
            if cur.exists() and _sha256(cur) != files[rel]["sha256"]:
                raise BackupError(f"{cur} differs from the backup's; pass --force to replace "
                                  "the hub's keys and certificates (moved aside)")
    moved: list[Path] = []
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
        if db.exists():
            # A self-contained copy, then the live files go (WAL and all).
            aside = db.with_name(f"{db.name}.before-restore-{stamp}")
            _sqlite_copy(db, aside)
            moved.append(aside)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        tmp = db.with_name(f".{db.name}.restoring")
        tmp.unlink(missing_ok=True)
        _copy_private(folder / SQLITE_NAME, tmp, 0o600)
        os.replace(tmp, db)
    else:
        args, env = _pg_args(url)
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error", *args,
              str(folder / PG_NAME)], env)
    if any(r.startswith("media/") for r in files):
        if media.exists():
            moved.append(_aside(media, stamp))
        for rel in (r for r in files if r.startswith("media/")):
            _copy_private(folder / rel, media / rel.removeprefix("media/"), 0o644, 0o755)
    for rel in (r for r in files if r.startswith("security/")):
        cur = security / rel.removeprefix("security/")
        if cur.exists():
            if _sha256(cur) == files[rel]["sha256"]:
                continue
            moved.append(_aside(cur, stamp))
        security.mkdir(parents=True, exist_ok=True, mode=0o700)
        _copy_private(folder / rel, cur, files[rel]["mode"])
    return Outcome(folder, len(files), sum(f["bytes"] for f in files.values()), kind,
                   tuple(moved))
