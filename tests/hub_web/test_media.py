"""Snapshots and clips in the web app: files served by row id (never by a path from the URL),
the per-device listing, the ``cameras`` field of device JSON and the fleet page's thumbnails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, request
from flask.testing import FlaskClient
from sqlalchemy import event
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from hub.influx import InfluxClient
from hub.media.store import MediaStore
from hub.registry.db import Registry
from hub.registry.models import MediaItem
from hub.settings import load_settings
from hub.web import create_app, make_web_server
from hub.web.fleet import device_time
from hub.web.media import MAX_LIMIT, QueryError, parse_media_query
from tests.hub_web.conftest import NOW, AddDevice
from tests.hub_web.test_browser import CHROMIUM, _dump_dom
from tests.hub_web.test_pages import parse

NOW_MS = int(NOW.timestamp() * 1000)
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"
CLIP = bytes((i * 7) % 256 for i in range(10_000))

AddMedia = Callable[..., str]


def fetch(client: FlaskClient, url: str, **kwargs: Any) -> TestResponse:
    """GET with the body read and the served file closed (send_file streams it)."""
    return client.get(url, buffered=True, **kwargs)


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


@pytest.fixture
def app(registry: Registry, dead_influx: InfluxClient, store: MediaStore) -> Flask:
    return create_app(registry=registry, influx=dead_influx, media=store,
                      test_config={"TESTING": True, "DCOR_NOW": lambda: NOW})


@pytest.fixture
def add_media(registry: Registry, store: MediaStore) -> AddMedia:
    """``add_media(device, camera, kind, media_id, ago_s=, data=, event_id=, complete=,
    path=)`` -> the row id. The file goes where the ingest puts it unless ``path`` is given
    (then only the row is written, pointing there)."""

    def add(device: str, camera: str, kind: str, media_id: str, *, ago_s: float = 0,
            data: bytes = JPEG, event_id: str = "", complete: bool = True,
            path: str | None = None) -> str:
        ts_ms = NOW_MS - int(ago_s * 1000)
        if path is None:
            rel = (Path("snapshots", device, camera, f"{ts_ms}-{media_id}.jpg")
                   if kind == "snapshot" else Path("clips", device, f"{media_id}.mp4"))
            (store.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (store.root / rel).write_bytes(data)
            path = str(rel)
        item_id = f"{device}:{kind}:{media_id}"
        with registry.session() as s:
            s.add(MediaItem(id=item_id, device_id=device, camera=camera, kind=kind,
                            media_id=media_id, event_id=event_id, ts_ms=ts_ms, path=path,
                            size=len(data), complete=complete, created_at=NOW))
        return item_id

    return add


def _seed(add_device: AddDevice, add_media: AddMedia) -> None:
    add_device("cam-001", presence="online", presence_ago=60, last_seen_ago=1,
               last_health_ago=1, last_health={"uptime_s": 5})
    add_device("cam-002", kecamatan="Sawangan", kelurahan="Bedahan")
    add_media("cam-001", "gate", "snapshot", "s1", ago_s=120)
    add_media("cam-001", "gate", "snapshot", "s2", ago_s=30, event_id="ev-7")
    add_media("cam-001", "gate", "snapshot", "s3", ago_s=5, complete=False)  # not yet whole
    add_media("cam-001", "lane-2", "snapshot", "s4", ago_s=3600)
    add_media("cam-001", "lane-2", "clip", "c1", ago_s=10, data=CLIP)
    add_media("cam-001", "yard", "clip", "c2", ago_s=50, data=CLIP)  # clips only, no snapshot


# --- files ------------------------------------------------------------------------------

def test_snapshot_is_served_as_jpeg_privately_and_revalidates(client: FlaskClient,
                                                              add_media: AddMedia) -> None:
    item = add_media("cam-001", "gate", "snapshot", "s1")
    r = fetch(client, f"/api/v1/media/{item}")
    assert r.status_code == 200
    assert r.mimetype == "image/jpeg" and r.data == JPEG
    cache = r.headers["Cache-Control"]
    assert "private" in cache and "public" not in cache and "max-age=" in cache
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    etag = r.headers["ETag"]
    again = fetch(client, f"/api/v1/media/{item}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


def test_clip_answers_byte_ranges(client: FlaskClient, add_media: AddMedia) -> None:
    item = add_media("cam-001", "gate", "clip", "c1", data=CLIP)
    whole = fetch(client, f"/api/v1/media/{item}")
    assert whole.status_code == 200 and whole.mimetype == "video/mp4"
    assert whole.headers["Accept-Ranges"] == "bytes" and whole.data == CLIP

    part = fetch(client, f"/api/v1/media/{item}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(CLIP)}"
    assert part.data == CLIP[100:200] and part.mimetype == "video/mp4"
    tail = fetch(client, f"/api/v1/media/{item}", headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.data == CLIP[-50:]
    beyond = fetch(client, f"/api/v1/media/{item}", headers={"Range": f"bytes={len(CLIP)}-"})
    assert beyond.status_code == 416


@pytest.mark.parametrize("item", ["cam-001:snapshot:nope", "cam-001", "UPPER", "a" * 201])
def test_unknown_media_is_a_json_404(client: FlaskClient, item: str) -> None:
    r = fetch(client, f"/api/v1/media/{item}")
    assert r.status_code == 404 and r.is_json
    assert r.get_json()["error"]["code"] == "unknown_media"


def test_incomplete_item_is_not_served(client: FlaskClient, add_media: AddMedia) -> None:
    item = add_media("cam-001", "gate", "clip", "c1", data=CLIP, complete=False)
    assert fetch(client, f"/api/v1/media/{item}").status_code == 404


@pytest.mark.parametrize("url", [
    "/api/v1/media/..%2F..%2Fregistry.sqlite",
    "/api/v1/media/../../registry.sqlite",
    "/api/v1/media/%2e%2e",
    "/api/v1/media/..",
    "/api/v1/media/snapshots%2Fcam-001%2Fgate%2F1-s1.jpg",
    "/api/v1/media/%2Fetc%2Fpasswd",
])
def test_a_path_in_the_url_reaches_no_file(client: FlaskClient, add_media: AddMedia,
                                           tmp_path: Path, url: str) -> None:
    add_media("cam-001", "gate", "snapshot", "s1")
    (tmp_path / "registry.sqlite").stat()  # the file such a URL aims at exists
    r = client.get(url)
    assert r.status_code == 404 and r.is_json
    assert b"SQLite" not in r.data and JPEG not in r.data


@pytest.mark.parametrize("stored_path", ["../registry.sqlite", "/etc/passwd",
                                         "snapshots/../../registry.sqlite", "link/secret"])
def test_a_row_pointing_outside_the_root_is_refused(client: FlaskClient, add_media: AddMedia,
                                                    store: MediaStore, tmp_path: Path,
                                                    stored_path: str) -> None:
    (tmp_path / "secret").write_bytes(b"not for the web")
    (store.root / "link").symlink_to(tmp_path, target_is_directory=True)
    item = add_media("cam-001", "gate", "snapshot", "evil", path=stored_path)
    r = fetch(client, f"/api/v1/media/{item}")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "media_gone"
    assert b"not for the web" not in r.data and b"root:" not in r.data


def test_pruned_file_and_missing_store(client: FlaskClient, add_media: AddMedia,
                                       store: MediaStore, registry: Registry,
                                       dead_influx: InfluxClient) -> None:
    item = add_media("cam-001", "gate", "snapshot", "s1")
    for f in store.root.rglob("*.jpg"):
        f.unlink()
    r = fetch(client, f"/api/v1/media/{item}")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "media_gone"
    bare = create_app(registry=registry, influx=dead_influx, test_config={"TESTING": True})
    r = fetch(bare.test_client(), f"/api/v1/media/{item}")
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "media_unavailable"


def test_store_is_built_from_settings(registry: Registry, dead_influx: InfluxClient,
                                      tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"data_dir": tmp_path / "hub"})
    app = create_app(settings, registry=registry, influx=dead_influx)
    store = app.extensions["dcor"].media
    assert store is not None and store.root == tmp_path / "hub" / "media"
    assert store.max_bytes == settings.media_max_bytes


# --- listing ----------------------------------------------------------------------------

def test_listing_newest_first_with_filters(client: FlaskClient, add_device: AddDevice,
                                           add_media: AddMedia) -> None:
    _seed(add_device, add_media)
    body = client.get("/api/v1/devices/cam-001/media").get_json()
    ids = [i["media_id"] for i in body["items"]]
    assert ids == ["c1", "s2", "c2", "s1", "s4"]  # s3 is incomplete
    first = body["items"][0]
    assert set(first) == {"id", "device", "camera", "kind", "media_id", "event_id", "ts",
                          "received", "size", "url"}  # no path on the hub's disk
    assert first["url"] == "/api/v1/media/cam-001:clip:c1"
    assert first["ts"] == {"utc": "2024-05-01T06:59:50.000Z",
                           "wib": "2024-05-01T13:59:50.000+07:00"}
    assert fetch(client, first["url"]).data == CLIP

    snaps = client.get("/api/v1/devices/cam-001/media?kind=snapshot&camera=gate").get_json()
    assert [i["media_id"] for i in snaps["items"]] == ["s2", "s1"]
    assert snaps["items"][0]["event_id"] == "ev-7" and snaps["items"][1]["event_id"] is None
    one = client.get("/api/v1/devices/cam-001/media?limit=1&camera=&lang=en").get_json()
    assert (one["limit"], one["camera"], len(one["items"])) == (1, None, 1)
    assert client.get("/api/v1/devices/cam-002/media").get_json()["items"] == []


@pytest.mark.parametrize("query", ["kind=video", "kind=SNAPSHOT", "camera=Gate",
                                   "camera=a%2Fb", "camera=" + "x" * 33, "limit=0",
                                   f"limit={MAX_LIMIT + 1}", "limit=abc", "limit=-1",
                                   "limit=1.5", "limit=%D9%A3", "kind=clip&kind=snapshot"])
def test_listing_rejects_bad_parameters(client: FlaskClient, add_device: AddDevice,
                                        query: str) -> None:
    add_device("cam-001")
    r = client.get(f"/api/v1/devices/cam-001/media?{query}")
    assert r.status_code == 400 and r.is_json
    assert r.get_json()["error"]["code"] == "invalid_parameter"


def test_listing_of_unknown_or_invalid_device(client: FlaskClient) -> None:
    r = client.get("/api/v1/devices/cam-404/media")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "unknown_device"
    r = client.get("/api/v1/devices/Bad_Id/media")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_device_id"


def test_parse_media_query_table() -> None:
    q = parse_media_query(MultiDict({"kind": "clip", "camera": "lane-2", "limit": "200"}))
    assert (q.kind, q.camera, q.limit) == ("clip", "lane-2", 200)
    q = parse_media_query(MultiDict({"kind": "", "lang": "id"}))
    assert (q.kind, q.camera, q.limit) == (None, None, 50)
    with pytest.raises(QueryError, match="limit"):
        parse_media_query(MultiDict({"limit": "201"}))


# --- device JSON ------------------------------------------------------------------------

def test_cameras_field_in_list_and_detail(client: FlaskClient, add_device: AddDevice,
                                          add_media: AddMedia) -> None:
    _seed(add_device, add_media)
    listed = {d["id"]: d for d in client.get("/api/v1/devices").get_json()}
    cams = listed["cam-001"]["cameras"]
    assert [c["camera"] for c in cams] == ["gate", "lane-2", "yard"]
    assert cams[0]["latest_snapshot"] == {
        "id": "cam-001:snapshot:s2", "url": "/api/v1/media/cam-001:snapshot:s2",
        "ts": {"utc": "2024-05-01T06:59:30.000Z", "wib": "2024-05-01T13:59:30.000+07:00"},
        "event_id": "ev-7"}
    assert cams[1]["latest_snapshot"]["id"] == "cam-001:snapshot:s4"  # the clip is newer
    assert cams[2]["latest_snapshot"] is None
    assert listed["cam-002"]["cameras"] == []
    detail = client.get("/api/v1/devices/cam-001").get_json()
    assert detail["cameras"] == cams
    assert fetch(client, cams[0]["latest_snapshot"]["url"]).mimetype == "image/jpeg"


def test_device_list_query_count_does_not_grow_with_the_fleet(
        client: FlaskClient, registry: Registry, add_device: AddDevice,
        add_media: AddMedia) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(registry.engine, "before_cursor_execute", count)
    try:
        def run() -> int:
            statements.clear()
            assert client.get("/api/v1/devices").status_code == 200
            return len(statements)

        add_device("cam-000")
        add_media("cam-000", "gate", "snapshot", "x")
        small = run()
        for i in range(1, 30):
            add_device(f"cam-{i:03d}")
            for cam in ("gate", "lane"):
                add_media(f"cam-{i:03d}", cam, "snapshot", f"{cam}-a", ago_s=60)
                add_media(f"cam-{i:03d}", cam, "snapshot", f"{cam}-b", ago_s=5)
        assert run() == small <= 2
        body = client.get("/api/v1/devices").get_json()
        assert all(c["latest_snapshot"]["id"].endswith("-b")
                   for d in body[1:] for c in d["cameras"])
    finally:
        event.remove(registry.engine, "before_cursor_execute", count)


def test_same_timestamp_picks_one_snapshot(client: FlaskClient, add_device: AddDevice,
                                           add_media: AddMedia) -> None:
    add_device("cam-001")
    add_media("cam-001", "gate", "snapshot", "a", ago_s=1)
    add_media("cam-001", "gate", "snapshot", "b", ago_s=1)
    cams = client.get("/api/v1/devices/cam-001").get_json()["cameras"]
    assert len(cams) == 1 and cams[0]["latest_snapshot"]["id"] == "cam-001:snapshot:b"


def test_device_time_out_of_range_is_none() -> None:
    assert device_time(2**53) is None
    assert device_time(NOW_MS) == NOW


# --- the fleet page ---------------------------------------------------------------------

class _Thumbs(HTMLParser):
    """Per device: each thumbnail's camera with its img attributes (or, for a camera without
    a snapshot, the placeholder's label), from the strip row under the device's row; and the
    ``rowspan`` of every device's row header."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[tuple[str, dict[str, str | None]]]] = {}
        self.strip_labels: dict[str, str | None] = {}
        self.rowspans: dict[str, str | None] = {}
        self._device: str | None = None
        self._strip: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr":
            self._device, self._strip = a.get("data-device"), a.get("data-cameras-of")
            if self._strip:
                self.rows[self._strip] = []
        elif tag == "th" and self._device:
            self.rowspans[self._device] = a.get("rowspan")
        elif self._strip is None:
            return
        elif tag == "ul":
            self.strip_labels[self._strip] = a.get("aria-label")
        elif tag == "li":
            self.rows[self._strip].append((a.get("data-camera") or "", {}))
        elif tag == "img" or (tag == "span" and a.get("class") == "thumb-none"):
            camera, _ = self.rows[self._strip][-1]
            self.rows[self._strip][-1] = (camera, a if tag == "img" else
                                          {"none": a.get("aria-label")})

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._device = self._strip = None


def thumbs_of(html: str) -> _Thumbs:
    p = _Thumbs()
    p.feed(html)
    return p


@pytest.mark.parametrize(("lang", "alt", "none", "label"), [
    ("id", "Cuplikan terbaru kamera gate di cam-001, 2024-05-01 13:59:30 WIB",
     "Belum ada cuplikan", "Kamera"),
    ("en", "Latest snapshot of camera gate on cam-001, 2024-05-01 13:59:30 WIB",
     "No snapshot yet", "Cameras"),
])
def test_fleet_page_shows_thumbnails(client: FlaskClient, add_device: AddDevice,
                                     add_media: AddMedia, lang: str, alt: str, none: str,
                                     label: str) -> None:
    _seed(add_device, add_media)
    html = client.get(f"/?lang={lang}").get_data(as_text=True)
    page = thumbs_of(html)
    gate, lane, yard = page.rows["cam-001"]
    assert gate[0] == "gate"
    assert gate[1]["src"] == "/api/v1/media/cam-001:snapshot:s2"
    assert gate[1]["alt"] == alt and gate[1]["loading"] == "lazy"
    assert (gate[1]["width"], gate[1]["height"]) == ("96", "54")
    assert lane[0] == "lane-2" and lane[1]["src"] == "/api/v1/media/cam-001:snapshot:s4"
    assert yard == ("yard", {"none": none})
    assert page.strip_labels == {"cam-001": label}
    # No strip (and no empty line) for a device without media; the device cell spans the
    # strip row where there is one.
    assert "cam-002" not in page.rows
    assert page.rowspans == {"cam-001": "2", "cam-002": None}
    # The figures keep their columns: the device rows read as without thumbnails.
    cells = parse(html).rows
    assert len(cells["cam-001"]) == len(cells["cam-002"]) == 9
    # The camera names are visible on the thumbnails, and a click opens the full picture.
    assert '<span class="thumb-label">lane-2</span>' in html
    assert '<a href="/api/v1/media/cam-001:snapshot:s2"' in html


def test_snapshot_time_shown_is_the_device_clock(client: FlaskClient, add_device: AddDevice,
                                                 add_media: AddMedia) -> None:
    add_device("cam-001")
    add_media("cam-001", "gate", "snapshot", "old", ago_s=timedelta(days=2).total_seconds())
    html = client.get("/?lang=en").get_data(as_text=True)
    (_camera, img), = thumbs_of(html).rows["cam-001"]
    assert str(img["alt"]).endswith("2024-04-29 14:00:00 WIB")


# --- the page script in a real browser ---------------------------------------------------

@pytest.fixture
def served(app: Flask, tmp_path: Path) -> Iterator[str]:
    settings = load_settings(env={}, overrides={"web_port": 0, "data_dir": tmp_path})
    server = make_web_server(settings, app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="test-web-media", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_script_redraws_the_same_thumbnails(served: str, app: Flask, add_device: AddDevice,
                                            add_media: AddMedia, tmp_path: Path) -> None:
    _seed(add_device, add_media)
    new_snapshot = threading.Event()

    @app.after_request
    def _gate_takes_a_new_snapshot(response: Response) -> Response:
        # Right after the browser got the page: its first refresh must show the new picture.
        if request.path == "/" and not new_snapshot.is_set():
            new_snapshot.set()
            add_media("cam-001", "gate", "snapshot", "s9", ago_s=1)
        return response

    dom = _dump_dom(f"{served}/?lang=id", tmp_path / "chromium")
    assert new_snapshot.is_set()
    assert 'data-updated="' in dom, "the page script did not redraw the tables"
    server_html = app.test_client().get("/?lang=id").get_data(as_text=True)
    script, server = thumbs_of(dom), thumbs_of(server_html)
    assert set(script.rows) == {"cam-001"}
    assert script.rows == server.rows
    assert script.rows["cam-001"][0][1]["src"] == "/api/v1/media/cam-001:snapshot:s9"
    assert script.rowspans == server.rowspans
    assert script.strip_labels == server.strip_labels
