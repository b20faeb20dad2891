"""The fleet page as the room sees it, and its language switch."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from flask.testing import FlaskClient

from hub.web.i18n import LANG_COOKIE
from tests.hub_web.conftest import AddDevice


class _Rows(HTMLParser):
    """Collects the text of each device row (``<tr data-device=...>``) cell by cell, and of
    every ``h2`` and table caption."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.headings: list[str] = []
        self.captions: list[str] = []
        self._row: str | None = None
        self._cell: list[str] | None = None
        self._h2: list[str] | None = None
        self._caption: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        device = a.get("data-device")
        if tag == "tr" and device:
            self._row = device
            self.rows[device] = []
        elif tag in ("td", "th") and self._row:
            self._cell = []
        elif tag == "h2":
            self._h2 = []
        elif tag == "caption":
            self._caption = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row and self._cell is not None:
            self.rows[self._row].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "h2" and self._h2 is not None:
            self.headings.append(" ".join("".join(self._h2).split()))
            self._h2 = None
        elif tag == "caption" and self._caption is not None:
            self.captions.append(" ".join("".join(self._caption).split()))
            self._caption = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._h2 is not None:
            self._h2.append(data)
        if self._caption is not None:
            self._caption.append(data)


def parse(html: str) -> _Rows:
    p = _Rows()
    p.feed(html)
    return p


def _fleet(add_device: AddDevice) -> None:
    add_device("cam-001", kecamatan="Beji", kelurahan="Kemiri Muka", presence="online",
               presence_ago=60, last_seen_ago=2, last_health_ago=2,
               last_health={"uptime_s": 100, "cpu_pct": 12.34, "mem_pct": 40.0,
                            "disk_pct": 71.0, "temp_c": 55.25, "outbox_depth": 3,
                            "clock_synced": True})
    add_device("cam-002", kecamatan="Beji", kelurahan="Kemiri Muka", presence="online",
               presence_ago=600, last_seen_ago=45, last_health_ago=45,
               last_health={"uptime_s": 100})
    add_device("cam-003", kecamatan="Sawangan", kelurahan="Bedahan", presence="offline",
               presence_ago=5, last_seen_ago=15 * 3600)
    add_device("cam-004", kecamatan="Beji", kelurahan="Tanah Baru")


def test_fleet_page_default_is_indonesian_and_grouped(client: FlaskClient,
                                                      add_device: AddDevice) -> None:
    _fleet(add_device)
    r = client.get("/")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<html lang="id">' in html
    page = parse(html)
    assert page.headings == ["Ringkasan armada", "Kecamatan Beji", "Kecamatan Sawangan"]
    # cam-001: everything reported; WIB time; Indonesian decimals
    assert page.rows["cam-001"] == [
        "cam-001 Tiang Kemiri Muka", "● Daring", "13:59:58",
        "12,3%", "40,0%", "71,0%", "55,3 °C", "3", "ya"]
    # cam-002: said online, health 45 s late at a 10 s interval -> late; sources absent
    assert page.rows["cam-002"] == [
        "cam-002 Tiang Kemiri Muka", "▲ Terlambat", "13:59:15",
        "—", "—", "—", "—", "0", "—"]
    # seen yesterday (WIB): the date is shown too; the full time is in the cell's title
    assert page.rows["cam-003"][1:] == ["■ Luring", "2024-04-30 23:00", "—", "—", "—", "—",
                                        "—", "—"]
    assert 'title="2024-04-30 23:00:00 WIB">2024-04-30 23:00</td>' in html
    assert page.rows["cam-004"][1] == "? Tidak diketahui"
    # Per-group counts: Kemiri Muka has one online and one late (degraded)
    kemiri = html[html.index("Kemiri Muka</span>"):html.index("</caption>",
                                                               html.index("Kemiri Muka"))]
    assert re.search(r'count-n">1</span> <span class="count-label">Daring', kemiri)
    assert re.search(r'count-n">1</span> <span class="count-label">Terganggu', kemiri)
    assert re.search(r'count-n">0</span> <span class="count-label">Luring', kemiri)
    assert page.captions == [
        "Kelurahan Kemiri Muka ● 1 Daring ▲ 1 Terganggu ■ 0 Luring",
        "Kelurahan Tanah Baru ● 0 Daring ▲ 0 Terganggu ■ 0 Luring ? 1 Tidak diketahui",
        "Kelurahan Bedahan ● 0 Daring ▲ 0 Terganggu ■ 1 Luring"]
    assert "4 perangkat" in html
    assert "Data per 2024-05-01 14:00:00 WIB" in html


def test_table_headers_and_state_text_not_colour_only(client: FlaskClient,
                                                      add_device: AddDevice) -> None:
    _fleet(add_device)
    html = client.get("/?lang=en").get_data(as_text=True)
    for header in ("Device", "State", "Last seen (WIB)", "Memory", "Temperature", "Outbox",
                   "Clock synced"):
        assert re.search(rf'<th scope="col"[^>]*>{re.escape(header)}</th>', html), header
    assert html.count('<th scope="row">') == 4
    assert html.count("<caption>") == 3
    assert '<span class="state state-offline"><span class="mark" aria-hidden="true">■</span>' \
           " Offline</span>" in html


def test_language_switch_changes_strings_and_is_remembered(client: FlaskClient,
                                                           add_device: AddDevice) -> None:
    _fleet(add_device)
    en = client.get("/?lang=en")
    html = en.get_data(as_text=True)
    assert '<html lang="en">' in html
    page = parse(html)
    assert page.headings == ["Fleet summary", "District Beji", "District Sawangan"]
    assert page.rows["cam-001"][1:] == ["● Online", "13:59:58", "12.3%",
                                        "40.0%", "71.0%", "55.3 °C", "3", "yes"]
    assert "4 devices" in html and "Armada perangkat" not in html
    assert f"{LANG_COOKIE}=en" in en.headers["Set-Cookie"]
    # The cookie carries the choice to the next page without ?lang=
    again = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in again and "Device fleet" in again
    back = client.get("/?lang=id").get_data(as_text=True)
    assert '<html lang="id">' in back and "Armada perangkat" in back


def test_unknown_language_falls_back_to_indonesian(client: FlaskClient) -> None:
    r = client.get("/?lang=xx")
    html = r.get_data(as_text=True)
    assert '<html lang="id">' in html
    assert "Belum ada perangkat yang terdaftar." in html
    assert "Set-Cookie" not in r.headers


def test_page_strings_for_the_script_are_translated(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    block = re.search(r'<script type="application/json" id="fleet-strings">(.*?)</script>',
                      html, re.S)
    assert block is not None
    strings = json.loads(block.group(1))
    assert strings == {"refreshFailed": "Gagal memperbarui, mencoba lagi"}  # all fleet.js says


def test_page_uses_only_its_own_assets(client: FlaskClient) -> None:
    r = client.get("/")
    html = r.get_data(as_text=True)
    assert "Content-Security-Policy" in r.headers
    assert re.findall(r'(?:src|href)="(https?:)?//', html) == []
    for asset in ("/static/hub.css", "/static/fleet.js"):
        assert asset in html
        got = client.get(asset)
        assert got.status_code == 200 and len(got.data) > 500
        got.close()
