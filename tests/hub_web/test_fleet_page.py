"""The fleet page with more devices than it lists: what needs attention in full, the rest
folded per kelurahan and opened on demand, filters in the query string."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from flask.testing import FlaskClient

from hub.web import fleetplan
from hub.web.fleetplan import place
from tests.hub_web.conftest import AddDevice
from tests.hub_web.test_pages import parse

OK_HEALTH = {"uptime_s": 100, "cpu_pct": 12.0, "clock_synced": True}


@pytest.fixture
def city(add_device: AddDevice, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight devices, three needing attention; more than the page lists without folding."""
    monkeypatch.setattr(fleetplan, "INLINE_MAX", 4)
    for i in range(1, 5):
        add_device(f"ok-{i:03d}", kecamatan="Beji", kelurahan="Kemiri Muka", presence="online",
                   presence_ago=60, last_seen_ago=2, last_health_ago=2, last_health=OK_HEALTH)
    add_device("ok-005", kecamatan="Sawangan", kelurahan="Bedahan", presence="online",
               presence_ago=60, last_seen_ago=2, last_health_ago=2, last_health=OK_HEALTH)
    add_device("bad-001", kecamatan="Beji", kelurahan="Kemiri Muka", presence="offline",
               presence_ago=5)
    add_device("bad-002", kecamatan="Sawangan", kelurahan="Bedahan")
    add_device("cam-009", kecamatan="Sawangan", kelurahan="Bedahan", presence="online",
               presence_ago=60, last_seen_ago=2, last_health_ago=2,
               last_health={**OK_HEALTH, "cameras": {"gate": {"state": "covered"},
                                                     "road": {"fps": 9.5}}})


def toggles(html: str) -> dict[str, tuple[str, str, str]]:
    """Each fold link: place key -> (href, aria-expanded, text)."""
    found = re.findall(r'<a href="([^"]+)" data-toggle="([^"]+)" aria-expanded="(\w+)">'
                       r"([^<]*)</a>", html)
    return {unquote(key): (href.replace("&amp;", "&"), expanded, " ".join(text.split()))
            for href, key, expanded, text in found}


def test_attention_in_full_the_rest_folded(client: FlaskClient, city: None) -> None:
    html = client.get("/").get_data(as_text=True)
    page = parse(html)
    assert set(page.rows) == {"bad-001", "bad-002", "cam-009"}
    # The camera fault is said in the state cell, in the page's language.
    assert page.rows["cam-009"][1] == "● Daring ⚠ gate: Tertutup"
    # Counts still cover every device, folded or not.
    assert page.captions == [
        "Kelurahan Kemiri Muka ● 4 Daring ▲ 0 Terganggu ■ 1 Luring",
        "Kelurahan Bedahan ● 2 Daring ▲ 0 Terganggu ■ 0 Luring ? 1 Tidak diketahui"]
    assert "8 perangkat" in html
    assert '<a href="/?state=attention">3 perangkat perlu perhatian</a>' in html
    assert "selalu ditampilkan; yang lain dilipat per kelurahan" in html
    links = toggles(html)
    kemiri = place("Beji", "Kemiri Muka")
    assert set(links) == {kemiri, place("Sawangan", "Bedahan")}
    href, expanded, text = links[kemiri]
    assert (expanded, text) == ("false", "Tampilkan 4 perangkat tanpa masalah")
    assert parse_qs(urlsplit(href).query) == {"open": [kemiri]}


def test_the_fold_link_opens_and_closes_a_kelurahan(client: FlaskClient, city: None) -> None:
    kemiri = place("Beji", "Kemiri Muka")
    href = toggles(client.get("/?lang=en").get_data(as_text=True))[kemiri][0]
    html = client.get(href).get_data(as_text=True)
    page = parse(html)
    assert set(page.rows) == {"bad-001", "ok-001", "ok-002", "ok-003", "ok-004", "bad-002",
                              "cam-009"}
    assert page.rows["ok-001"][1:4] == ["● Online", "13:59:58", "12.0%"]
    # Attention first, then the fold link, then the opened rows.
    order = re.findall(r'data-device="([^"]+)"|data-toggle="([^"]+)"', html)
    kemiri_part = [a or "fold" for a, b in order
                   if a.startswith(("ok-00", "bad-001")) or b == quote(kemiri)]
    assert kemiri_part == ["bad-001", "fold", "ok-001", "ok-002", "ok-003", "ok-004"]
    close, expanded, text = toggles(html)[kemiri]
    assert (expanded, text) == ("true", "Hide 4 devices without problems")
    assert "open" not in parse_qs(urlsplit(close).query)
    # The language links keep the opened place.
    assert re.search(r'href="\?open=Beji%1FKemiri\+Muka&amp;lang=id"', html)


def test_filters_narrow_the_list_and_keep_the_fold_links_in_the_filter(
        client: FlaskClient, city: None) -> None:
    html = client.get("/?kecamatan=Sawangan&lang=en").get_data(as_text=True)
    assert set(parse(html).rows) == {"ok-005", "bad-002", "cam-009"}  # few: nothing folded
    assert "3 devices match the filters" in html
    assert '<option value="Sawangan" selected>' in html
    assert 'href="/">Whole fleet</a>' in html
    offline = parse(client.get("/?state=offline").get_data(as_text=True))
    assert set(offline.rows) == {"bad-001"}
    assert offline.headings == ["Fleet summary", "District Beji"]  # the cookie says en
    found = parse(client.get("/?q=OK-00").get_data(as_text=True))
    assert found.rows == {}  # five match: more than the page lists unfolded
    html = client.get("/?q=ok-00").get_data(as_text=True)
    assert set(toggles(html)) == {place("Beji", "Kemiri Muka"), place("Sawangan", "Bedahan")}
    href = toggles(html)[place("Beji", "Kemiri Muka")][0]
    assert parse_qs(urlsplit(href).query) == {"q": ["ok-00"],
                                              "open": [place("Beji", "Kemiri Muka")]}
    assert set(parse(client.get(href).get_data(as_text=True)).rows) == {
        "ok-001", "ok-002", "ok-003", "ok-004"}
    none = client.get("/?kecamatan=Nowhere&lang=en").get_data(as_text=True)
    assert "No devices match these filters." in none and "0 devices match" in none


def test_the_filter_form_is_labelled_and_lists_every_place(client: FlaskClient,
                                                          city: None) -> None:
    html = client.get("/?lang=en").get_data(as_text=True)
    form = html[html.index('<form class="filters"'):html.index("</form>")]
    for label in ("District", "Sub-district", "State", "Device or site"):
        assert f"<label>{label}" in form
    assert '<optgroup label="Beji">' in form and '<option value="Bedahan">' in form
    assert '<option value="attention">Needs attention</option>' in form
    assert '<option value="stale">Late</option>' in form


@pytest.mark.parametrize("query", ["state=nope", "kecamatan=" + "x" * 101, "open=nosep",
                                   "state=online&state=offline"])
def test_invalid_filters_are_400(client: FlaskClient, query: str) -> None:
    r = client.get(f"/?{query}")
    assert r.status_code == 400


def test_no_attention_is_said(client: FlaskClient, add_device: AddDevice) -> None:
    add_device("ok-001", presence="online", presence_ago=60, last_health_ago=2)
    html = client.get("/?lang=en").get_data(as_text=True)
    assert "No device needs attention." in html
    assert "data-toggle" not in html  # one device: nothing is folded
