"""``fetch_model`` against a local HTTP server on 127.0.0.1 serving a zip built here."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.vision.errors import ModelFetchError
from edge_agent.vision.models_fetch import (
    ARCHIVE_SHA256,
    MEMBER_SHA256,
    MODEL_URL,
    TextProgress,
    fetch_model,
)

MODEL = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 600  # ~150 KB stand-in
LABELS = b"???\nperson\nbicycle\n"


def _zip(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


ARCHIVE = _zip(**{"detect.tflite": MODEL, "labelmap.txt": LABELS})
FILES = {"/model.zip": ARCHIVE, "/nested.zip": _zip(**{"coco/detect.tflite": MODEL,
                                                       "coco/labelmap.txt": LABELS}),
         "/notzip": b"<html>moved</html>", "/empty.zip": _zip(**{"readme.txt": b"x"})}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


MEMBERS = {"detect.tflite": sha(MODEL), "labelmap.txt": sha(LABELS)}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = FILES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not take 127.0.0.1 requests elsewhere."""
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, name="test-http", daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_verify_unpack_with_progress(server: str, tmp_path: Path) -> None:
    out = io.StringIO()
    paths = fetch_model(tmp_path / "models", f"{server}/model.zip", sha(ARCHIVE), MEMBERS,
                        progress=TextProgress("coco", out))
    assert paths["detect.tflite"].read_bytes() == MODEL
    assert paths["labelmap.txt"].read_bytes() == LABELS
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        "detect.tflite", "labelmap.txt"]
    shown = out.getvalue()
    assert "100%" in shown and shown.endswith("\n") and "[" + "#" * 30 + "]" in shown


def test_members_may_sit_in_a_folder(server: str, tmp_path: Path) -> None:
    paths = fetch_model(tmp_path, f"{server}/nested.zip", None, MEMBERS)
    assert paths["detect.tflite"] == tmp_path / "detect.tflite"


@pytest.mark.parametrize(("path", "archive_sha", "members", "message"), [
    ("/model.zip", "0" * 64, MEMBERS, "expected 0000"),
    ("/model.zip", None, {**MEMBERS, "detect.tflite": "f" * 64}, "detect.tflite in"),
    ("/notzip", None, MEMBERS, "not a zip"),
    ("/empty.zip", None, MEMBERS, "has no detect.tflite"),
    ("/missing.zip", None, MEMBERS, "cannot download"),
])
def test_bad_downloads_leave_nothing_behind(server: str, tmp_path: Path, path: str,
                                            archive_sha: str | None,
                                            members: dict[str, str], message: str) -> None:
    target = tmp_path / "models"
    with pytest.raises(ModelFetchError, match=message):
        fetch_model(target, server + path, archive_sha, members)
    assert not target.exists() or not list(target.iterdir())


def test_nothing_listens_there(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ModelFetchError, match="cannot download"):
        fetch_model(tmp_path, f"http://127.0.0.1:{port}/model.zip", None, MEMBERS, timeout=2)


def test_the_official_archive_and_model_digests(assets: Path) -> None:
    assert MODEL_URL.endswith("/models/tflite/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip")
    assert MODEL_URL.startswith("https://storage.googleapis.com/download.tensorflow.org/")
    assert len(ARCHIVE_SHA256) == 64
    # What the agent loads is checked in full against the copy in the assets.
    for name, digest in MEMBER_SHA256.items():
        assert sha((assets / "models" / name).read_bytes()) == digest
    assert MEMBER_SHA256["detect.tflite"].startswith("e4b118e5")
    assert MEMBER_SHA256["detect.tflite"].endswith("4779d13")
