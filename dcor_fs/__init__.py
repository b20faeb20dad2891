"""Files written whole or not at all, shared by the agent, the hub and provisioning.

A reader (or a power cut) sees the old file or the new one, never half of either: the bytes
go to a temporary file in the same folder, are fsynced, and the temporary file is renamed
over the target. The temporary file has its final mode and owner from the start, so a key or
a password file is never briefly readable by others.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600,
                 owner: tuple[int, int] | None = None, sync: bool = True) -> Path:
    """Replace ``path`` with ``data``; ``sync=False`` when a power cut may lose it (a
    process crash cannot)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)  # not narrowed by the umask, unlike a mode given to open()
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
