"""The page script in a real browser: after its first refresh (the same page fetched again,
its fresh parts swapped in) the tables read exactly like the server's.

Needs Debian's ``chromium``; skipped (with the reason shown) where it is not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask

from hub.influx import InfluxClient
from hub.registry.db import Registry
from hub.registry.models import Device, Site
from hub.settings import load_settings
from hub.web import create_app, make_web_server
from hub.web.timefmt import wib
from tests.hub_web.test_pages import parse

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _seed(registry: Registry, now: datetime) -> None:
    def ago(s: float) -> datetime:
        return now - timedelta(seconds=s)

    health = {"uptime_s": 9, "cpu_pct": 7.25, "mem_pct": 50.0, "disk_pct": 99.95,
              "temp_c": -0.25, "outbox_depth": 12345, "clock_synced": True}
    with registry.session() as s:
        s.add_all([
            Site(id="s1", name="Tiang Margonda", kecamatan="Beji", kelurahan="Kemiri Muka"),
            Site(id="s2", name="Kantor Kelurahan", kecamatan="Sawangan", kelurahan="Bedahan"),
            Site(id="s3", name="", kecamatan="", kelurahan=""),
        ])
        s.add_all([
            Device(id="cam-001", site_id="s1", created_at=now, presence="online",
                   presence_at=ago(60), last_seen_at=ago(1), last_health_at=ago(1),
                   last_health=health),
            Device(id="cam-002", site_id="s1", created_at=now, presence="online",
                   presence_at=ago(600), last_seen_at=ago(40), last_health_at=ago(40),
                   last_health={"uptime_s": 1, "clock_synced": False}),
            Device(id="cam-003", site_id="s2", created_at=now, presence="offline",
                   presence_at=ago(5), last_seen_at=ago(2 * 86400)),
            Device(id="cam-004", site_id="s3", created_at=now),
            Device(id="cam-005", site_id="s3", created_at=now, status="decommissioned"),
        ])


@pytest.fixture
def served(registry: Registry, dead_influx: InfluxClient, tmp_path: Path
           ) -> Iterator[tuple[str, Flask]]:
    now = datetime.now(UTC)
    _seed(registry, now)
    # One fixed clock for the server's render and the script's refresh, so both see the
    # same states.
    app = create_app(registry=registry, influx=dead_influx, test_config={"DCOR_NOW": lambda: now})
    settings = load_settings(env={}, overrides={"web_port": 0, "data_dir": tmp_path})
    server = make_web_server(settings, app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="test-web", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _summary(html: str) -> tuple[str, str]:
    """The device count and the fleet-wide counts, as text."""
    count = re.search(r'id="device-count">([^<]*)<', html)
    totals = re.search(r'<div id="total-counts">(.*?)</div>', html, re.S)
    assert count is not None and totals is not None
    return count.group(1), " ".join(re.sub(r"<[^>]+>", "", totals.group(1)).split())


def _dump_dom(url: str, profile: Path) -> str:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-default-apps", f"--user-data-dir={profile}",
           # Virtual time runs the page's 5 s refresh timer at once; it waits for the fetch.
           "--virtual-time-budget=8000", "--dump-dom", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=True)
    return out.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("lang", ["id", "en"])
def test_script_redraws_the_same_tables(served: tuple[str, Flask], tmp_path: Path,
                                        lang: str) -> None:
    base, app = served
    url = f"{base}/?lang={lang}"
    server_html = app.test_client().get(f"/?lang={lang}").get_data(as_text=True)
    before_midnight = datetime.now(wib()).date()
    dom = _dump_dom(url, tmp_path / "chromium")
    if datetime.now(wib()).date() != before_midnight:
        pytest.skip("WIB midnight passed during the test; the short times differ")

    assert 'data-updated="' in dom, "the page script did not redraw the tables"
    server_page, script_page = parse(server_html), parse(dom)
    assert set(script_page.rows) == {"cam-001", "cam-002", "cam-003", "cam-004", "cam-005"}
    assert script_page.rows == server_page.rows
    assert script_page.headings == server_page.headings
    assert script_page.captions == server_page.captions
    assert _summary(dom) == _summary(server_html)
    if lang == "id":
        assert script_page.rows["cam-001"][3:] == ["7,3%", "50,0%", "100,0%", "-0,3 °C",
                                                   "12.345", "ya"]
        assert "? 1 Tidak diketahui" in " ".join(script_page.captions)
    else:
        assert script_page.rows["cam-002"][1] == "▲ Late"
