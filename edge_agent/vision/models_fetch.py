"""Download the official COCO SSD MobileNet v1 (quantized) archive, verify it, unpack it.

``dcor-agent models fetch`` calls ``fetch_model``. Two checks, both full SHA-256:
- the archive, against the digest published for this exact file by TensorFlow's own build
  (``tflite_mobilenet_ssd_quant`` in tensorflow/workspace.bzl) and by the Yocto/OpenEmbedded
  recipes that package it (the network is closed on the machine this was written on, so that
  one digest is taken from those sources, not recomputed);
- each unpacked file, against the digest of the copy in the project's test assets
  (``detect.tflite`` e4b118e5...4779d13, ``labelmap.txt`` c7e79c85...0211), which is what the
  agent actually loads.
Files are written next to their final name and renamed, so a crash leaves no half model.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Final

from edge_agent.vision.config import DEFAULT_MODEL_DIR
from edge_agent.vision.errors import ModelFetchError

MODEL_URL: Final = ("https://storage.googleapis.com/download.tensorflow.org/models/tflite/"
                    "coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip")
ARCHIVE_SHA256: Final = "a809cd290b4d6a2e8a9d5dad076e0bd695b8091974e0eed1052b480b2f21b6dc"
MEMBER_SHA256: Final = {
    "detect.tflite": "e4b118e5e4531945de2e659742c7c590f7536f8d0ed26d135abcfe83b4779d13",
    "labelmap.txt": "c7e79c855f73cbba9f33d649d60e1676eb0a974021a41696d1ac0d4b7f7e0211",
}
MAX_ARCHIVE_BYTES: Final = 64 * 1024 * 1024  # the real one is about 4 MB
_CHUNK = 64 * 1024

Progress = Callable[[int, int | None], None]


class TextProgress:
    """``[#######.........]  45%  1.9/4.2 MB`` on one line of ``stream``, redrawn in place."""

    def __init__(self, label: str = "model", stream: IO[str] | None = None,
                 width: int = 30) -> None:
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._width = width
        self._shown = -1

    def __call__(self, done: int, total: int | None) -> None:
        if total:
            pct = min(100, done * 100 // total)
            if pct == self._shown:
                return
            self._shown = pct
            bar = "#" * (pct * self._width // 100)
            text = (f"\r{self._label} [{bar:<{self._width}}] {pct:3d}%  "
                    f"{done / 1e6:.1f}/{total / 1e6:.1f} MB")
        else:
            text = f"\r{self._label} {done / 1e6:.1f} MB"
        self._stream.write(text)
        if total and done >= total:
            self._stream.write("\n")
        self._stream.flush()


def _download(url: str, progress: Progress | None, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > MAX_ARCHIVE_BYTES:
                raise ModelFetchError(f"{url} is {total} bytes, more than a model archive")
            buf = io.BytesIO()
            while chunk := resp.read(_CHUNK):
                buf.write(chunk)
                if buf.tell() > MAX_ARCHIVE_BYTES:
                    raise ModelFetchError(f"{url} sends more than {MAX_ARCHIVE_BYTES} bytes")
                if progress:
                    progress(buf.tell(), total)
    except OSError as exc:  # URLError, HTTPError, timeouts and resets are all OSErrors
        raise ModelFetchError(f"cannot download {url}: {exc}; check the network and "
                              "proxy, or copy the archive over and use --url file://...") from exc
    data = buf.getvalue()
    if total is not None and len(data) != total:
        raise ModelFetchError(f"download of {url} stopped at {len(data)} of {total} bytes")
    return data


def fetch_model(
    target_dir: Path | str = DEFAULT_MODEL_DIR,
    url: str = MODEL_URL,
    expected_sha256: str | None = ARCHIVE_SHA256,
    members: Mapping[str, str | None] = MEMBER_SHA256,
    progress: Progress | None = None,
    timeout: float = 60.0,
) -> dict[str, Path]:
    """Download ``url``, check it, unpack ``members`` (file name -> expected SHA-256 or
    None) into ``target_dir``; return name -> path. ``expected_sha256=None`` skips the
    archive check (the members are still checked)."""
    data = _download(url, progress, timeout)
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise ModelFetchError(
            f"{url} has SHA-256 {digest}, expected {expected_sha256}: the download is "
            "corrupt or was tampered with (or the archive changed upstream; pass its "
            "digest explicitly only if you trust the new one)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ModelFetchError(f"{url} is not a zip archive") from exc
    with archive:
        by_name = {Path(i.filename).name: i for i in archive.infolist() if not i.is_dir()}
        contents: dict[str, bytes] = {}
        for name, want in members.items():
            if name not in by_name:
                raise ModelFetchError(f"{url} has no {name} (it holds {sorted(by_name)})")
            blob = archive.read(by_name[name])
            got = hashlib.sha256(blob).hexdigest()
            if want is not None and got != want.lower():
                raise ModelFetchError(f"{name} in {url} has SHA-256 {got}, expected {want}")
            contents[name] = blob
    target = Path(target_dir)
    try:
        target.mkdir(parents=True, exist_ok=True)
        return {name: _write_atomic(target / name, blob) for name, blob in contents.items()}
    except OSError as exc:
        raise ModelFetchError(f"cannot write the model into {target}: {exc}") from exc


def _write_atomic(path: Path, blob: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
