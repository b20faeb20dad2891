"""Model files named by a configuration: fetched from the hub over HTTP(S), resumed, verified.

Files are kept by content: ``<folder>/<sha256>``. A download goes to ``.<sha256>.part`` first
and continues from its size with a ``Range`` request after an interruption (a server that
answers 200 instead of 206 sends it again from the start). Only a file of the exact size and
SHA-256 is renamed into place, so a model in use is always a whole, checked one.
"""

from __future__ import annotations

import hashlib
import os
import re
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Final

from dcor_wire.configdoc import ModelSpec

CHUNK: Final = 64 * 1024
_RANGE_RE: Final = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class ModelFetchError(RuntimeError):
    """The model could not be fetched or is not what the configuration says."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def have_model(spec: ModelSpec, folder: Path) -> Path | None:
    """The local file when it is present and whole (size and digest checked)."""
    final = folder / spec.sha256
    if final.is_file() and final.stat().st_size == spec.size and \
            sha256_file(final) == spec.sha256:
        return final
    return None


def fetch_model(spec: ModelSpec, folder: Path, *, ca_file: Path | None = None,
                timeout: float = 30.0) -> Path:
    """The verified local file of ``spec``, downloading what is missing."""
    folder.mkdir(parents=True, exist_ok=True)
    done = have_model(spec, folder)
    if done is not None:
        return done
    part = folder / f".{spec.sha256}.part"
    for _attempt in range(2):  # a bad partial file is thrown away once, then it is an error
        have = part.stat().st_size if part.exists() else 0
        if have > spec.size:
            part.unlink()
            have = 0
        if have < spec.size:
            _download(spec, part, have, ca_file, timeout)
        if part.stat().st_size == spec.size and sha256_file(part) == spec.sha256:
            os.replace(part, folder / spec.sha256)
            return folder / spec.sha256
        part.unlink()
    raise ModelFetchError(f"{spec.url}: the file does not have sha256 {spec.sha256[:12]}... "
                          f"and size {spec.size}")


def _context(url: str, ca_file: Path | None) -> ssl.SSLContext | None:
    if not url.startswith("https://"):
        return None
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def _download(spec: ModelSpec, part: Path, have: int, ca_file: Path | None,
              timeout: float) -> None:
    req = urllib.request.Request(spec.url)
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        with urllib.request.urlopen(req, timeout=timeout,
                                    context=_context(spec.url, ca_file)) as resp:
            status = resp.status
            mode = "ab"
            if status == 206:
                m = _RANGE_RE.match(resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != have:
                    raise ModelFetchError(f"{spec.url}: the server resumed at the wrong place")
            elif status == 200:
                mode, have = "wb", 0
            else:
                raise ModelFetchError(f"{spec.url}: HTTP {status}")
            with part.open(mode) as f:
                while block := resp.read(CHUNK):
                    have += len(block)
                    if have > spec.size:
                        raise ModelFetchError(f"{spec.url}: larger than {spec.size} bytes")
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
    except urllib.error.HTTPError as exc:
        raise ModelFetchError(f"{spec.url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        # What arrived stays in the .part file: the next attempt resumes after it.
        raise ModelFetchError(f"{spec.url}: {exc}") from exc
