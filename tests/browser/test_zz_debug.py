import base64, json, zlib
from tests.browser.conftest import OPERATOR
def dec(v):
    comp = v.startswith(".")
    payload = v.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return zlib.decompress(raw) if comp else raw
def test_dbg(live_hub, open_page):
    alert_id = live_hub.seeded.alert_ids[0]
    console = open_page(OPERATOR, "/alerts?desk=kominfo")
    for c in console.context.cookies():
        print("\nCOOKIE", c["name"], dec(c["value"]) if c["name"]=="dcor_session" else c["value"], c["path"])
    print("FORM", console.locator(f'tr[data-alert="{alert_id}"] input[name=csrf_token]').get_attribute("value"))
    console.evaluate("() => 1")
