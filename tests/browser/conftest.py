"""A live hub for the browser tests, started once per run: Mosquitto, influxd, ``dcor-hub
ingest`` and ``dcor-hub web`` as real processes on free loopback ports, two real agents,
and a city's fleet of 500 devices (498 written straight into the registry, media store and
InfluxDB by ``seed``). Playwright drives Debian's Chromium (never a downloaded browser).

Screenshots go to a temporary folder, or to ``$DCOR_SCREENSHOTS`` when set (the README's
pictures: ``DCOR_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/browser``).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from hub.localservices import InfluxProcess, MosquittoProcess
from hub.localservices.process import free_port
from hub.registry.models import Device
from hub.security.store import SecurityStore
from tests.browser import seed
from tests.integration.fleetkit import PY, AgentProc, Fleet

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "correct horse battery staple"
OPERATOR, OPERATOR_2, ADMIN = "ani-kominfo", "budi-kominfo", "citra-admin"
FLEET_SIZE = 500
AGENTS = ("beji-agent-a", "beji-agent-b")

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)",
                allow_module_level=True)


@dataclass
class LiveHub:
    fleet: Fleet
    port: int
    seeded: seed.SeededFleet
    agents: dict[str, AgentProc]
    web: subprocess.Popen[bytes] | None = None
    place_names: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_web(self) -> None:
        log = open(self.fleet.root / "web.log", "ab")  # noqa: SIM115 - handed to the child
        self.web = subprocess.Popen(
            [PY, "-m", "hub.cli", "--config", str(self.fleet.hub_config), "web", "--port",
             str(self.port)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            assert self.web.poll() is None, self.web_log()
            time.sleep(0.1)
        raise AssertionError(f"the web app did not answer: {self.web_log()}")

    def kill_web(self) -> None:
        if self.web is not None and self.web.poll() is None:
            self.web.kill()
            self.web.wait(10)

    def web_log(self) -> str:
        return (self.fleet.root / "web.log").read_text(errors="replace")[-3000:]

    def presence(self, device_id: str) -> str:
        with self.fleet.registry.session() as s:
            d = s.get(Device, device_id)
            return d.presence if d is not None else ""


@pytest.fixture(scope="session")
def live_hub(tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoProcess,
             influxd: InfluxProcess) -> Iterator[LiveHub]:
    db = f"t_{uuid.uuid4().hex[:8]}"
    influxd.create_database(db)
    fleet = Fleet(tmp_path_factory.mktemp("room"), mosquitto.port, influxd.url, db)
    cfg = yaml.safe_load(fleet.hub_config.read_text())
    cfg.update(web_cookie_secure=False, secret_key=uuid.uuid4().hex)
    fleet.hub_config.write_text(yaml.safe_dump(cfg))
    hub = LiveHub(fleet, free_port(), seed.SeededFleet([], 0, 0, []), {})
    try:
        fleet.registry.create_schema()
        now = seed.utc_now()
        media = fleet.settings.data_dir / "media"
        hub.seeded = seed.seed_fleet(fleet.registry, media, FLEET_SIZE - len(AGENTS), now)
        seed.seed_history(fleet.influx, fleet.registry, media, seed.SHOWCASE, now)
        store = SecurityStore(fleet.registry)
        store.create_user(OPERATOR, PASSWORD, "operator", desk="kominfo")
        store.create_user(OPERATOR_2, PASSWORD, "operator", desk="kominfo")
        store.create_user(ADMIN, PASSWORD, "admin")
        for dev in AGENTS:
            hub.agents[dev] = fleet.enroll(dev, kelurahan="Kemiri Muka", kecamatan="Beji")
        fleet.start_hub()
        for a in hub.agents.values():
            a.start()
        hub.start_web()
        deadline = time.monotonic() + 30
        while not all(hub.presence(d) == "online" for d in AGENTS):
            assert time.monotonic() < deadline, fleet.hub_log()
            time.sleep(0.2)
        hub.place_names = {n for k, _a, _b, kels in seed.PLACES for n in (k, *kels)}
        yield hub
    finally:
        hub.kill_web()
        fleet.stop()
        if influxd.is_running():
            influxd.drop_database(db)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    pw = playwright_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
    finally:
        pw.stop()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("DCOR_SCREENSHOTS")
    return Path(target) if target else tmp_path_factory.mktemp("screenshots")


@dataclass
class Console:
    """Console errors and uncaught exceptions of every page a test opened."""

    errors: list[str] = field(default_factory=list)
    expect_network_errors: bool = False

    def watch(self, page: Any) -> None:
        def on_console(msg: Any) -> None:
            if msg.type == "error":
                self.errors.append(f"{page.url}: {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))

    def unexpected(self) -> list[str]:
        if not self.expect_network_errors:
            return self.errors
        # A hub taken down on purpose: the browser reports its failed reconnects.
        return [e for e in self.errors if "ERR_CONNECTION_REFUSED" not in e
                and "net::" not in e]


OpenPage = Callable[..., Any]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def open_page(browser: Any, live_hub: LiveHub, console: Console) -> Iterator[OpenPage]:
    """``open_page(user, path, lang="id")``: a fresh browser context (1920x1080), logged in
    as ``user`` (None: nobody), at ``path``. No test may leave a console error behind."""
    contexts: list[Any] = []

    def make(user: str | None, path: str, lang: str = "id") -> Any:
        ctx = browser.new_context(viewport={"width": 1920, "height": 1080},
                                  locale="id-ID" if lang == "id" else "en-US",
                                  timezone_id="Asia/Jakarta")
        contexts.append(ctx)
        page = ctx.new_page()
        console.watch(page)
        if user is not None:
            login(page, live_hub.url, user)
        sep = "&" if "?" in path else "?"
        page.goto(f"{live_hub.url}{path}{sep}lang={lang}")
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    assert not console.unexpected(), "console errors:\n" + "\n".join(console.unexpected())


def login(page: Any, base: str, user: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("form.login button[type=submit]")
    assert "/login" not in page.url, f"login of {user} failed"


def save_shot(page: Any, folder: Path, name: str) -> Path:
    """A PNG of the viewport; for the README (``$DCOR_SCREENSHOTS``) scaled to 1280 pixels
    wide so the pictures stay small in git."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("DCOR_SCREENSHOTS"):
        import cv2

        img = cv2.imread(str(path))
        h, w = img.shape[:2]
        small = cv2.resize(img, (1280, round(h * 1280 / w)), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(path), small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path
