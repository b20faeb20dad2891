"""The fleet page in a real browser with the 500-device fleet: what needs attention is listed,
the rest is folded per kelurahan and opens in place, the refresh keeps it open, and the page
fits a wall and a laptop without sideways scrolling."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ADMIN, FLEET_SIZE, OpenPage

pytestmark = pytest.mark.integration

ROWS_JS = "() => document.querySelectorAll('#fleet tr[data-device]').length"


def test_folded_rows_open_and_close_in_place(open_page: OpenPage) -> None:
    page = open_page(ADMIN, "/")
    listed = page.evaluate(ROWS_JS)
    assert 0 < listed < FLEET_SIZE // 4, f"{listed} rows: the fleet is not folded"
    assert "perlu perhatian" in page.locator("#attention").inner_text()
    page.evaluate("() => { window.__sameDocument = true; }")
    link = page.locator("#fleet a[data-toggle]").first
    key = link.get_attribute("data-toggle")
    folded = int("".join(ch for ch in link.inner_text() if ch.isdigit()))
    assert link.get_attribute("aria-expanded") == "false" and folded > 0
    link.click()
    opened = page.locator(f'#fleet a[data-toggle="{key}"][aria-expanded="true"]')
    opened.wait_for(timeout=10_000)
    assert page.evaluate(ROWS_JS) == listed + folded
    assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"
    assert "open=" in page.url
    assert "Sembunyikan" in opened.inner_text()
    # The periodic refresh draws the same page again, the place still open.
    stamp = page.get_attribute("#fleet", "data-updated")
    page.wait_for_function(f"() => document.getElementById('fleet').dataset.updated !== "
                           f"{stamp!r}", timeout=15_000)
    assert page.evaluate(ROWS_JS) == listed + folded
    # The link keeps the keyboard's focus across redraws.
    assert page.evaluate("() => document.activeElement.getAttribute('data-toggle')") == key
    opened.click()
    page.locator(f'#fleet a[data-toggle="{key}"][aria-expanded="false"]').wait_for(
        timeout=10_000)
    assert page.evaluate(ROWS_JS) == listed
    assert "open=" not in page.url


@pytest.mark.parametrize("width,height", [(1920, 1080), (1366, 768)])
def test_fits_the_screen_without_sideways_scrolling(open_page: OpenPage, width: int,
                                                     height: int) -> None:
    page = open_page(ADMIN, "/?state=attention")
    page.set_viewport_size({"width": width, "height": height})
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    form = page.locator("form.filters").bounding_box()
    assert form is not None and form["x"] + form["width"] <= width
    # Every row listed is one that needs attention.
    states = page.evaluate("""() => [...document.querySelectorAll('#fleet tr[data-device]')]
        .map(tr => tr.className + ' ' + (tr.querySelector('.cam-fault') ? 'fault' : ''))""")
    assert states and all("row-online" not in s or "fault" in s for s in states)
