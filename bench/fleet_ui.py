"""The room's fleet page and ``/api/v1/devices`` with a city-sized registry.

    python -m bench.fleet_ui [--devices 5000] [--requests 40] [--database-url URL]

Fills a registry (SQLite in a temporary folder by default, or ``--database-url``, e.g. a
PostgreSQL database) with N devices spread over Depok's 11 kecamatan and 63 kelurahan, each
with a recent health payload and a mix of states, then times the app's own handling of what
a user loads first (Flask test client: server time, no network): ``GET /`` (counts per place,
every device needing attention in full, the rest folded per kelurahan) and
``GET /api/v1/devices`` (its first page). Target: p95 <= 300 ms. One JSON line: ``devices``,
``page_p50_ms``, ``page_p95_ms``, ``api_p50_ms``, ``api_p95_ms``; also ``page_rows`` (device
rows on the page), ``open_p50_ms``/``open_p95_ms`` (the page with one kelurahan's folded rows
opened) and ``api_walk_ms`` (median time to read every device by following ``Link: next``).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import insert

from bench import synth
from bench.common import emit, machine, note, percentile
from hub.registry.db import Registry, open_registry
from hub.registry.models import Device, Site
from hub.settings import load_settings
from hub.web import create_app
from hub.web.fleetplan import place


def fill(registry: Registry, n: int, now: datetime | None = None) -> datetime:
    """N devices: 90 % online, 4 % stale, 4 % offline, 2 % never heard from, as of ``now``
    (returned)."""
    rng = random.Random(1)
    now = now or datetime.now(UTC)
    sites, devices = [], []
    for i, dev in enumerate(synth.device_ids(n)):
        kec, kel = synth.site_of(i)
        sites.append({"id": f"site-{dev}", "name": f"Tiang {dev}", "kecamatan": kec,
                      "kelurahan": kel, "lat": -6.4 + rng.random() / 10,
                      "lon": 106.8 + rng.random() / 10})
        roll = rng.random()
        box = synth.SyntheticBox(dev)
        health_age = 5 if roll < 0.90 else 45 if roll < 0.94 else 900
        presence = "unknown" if roll >= 0.98 else "offline" if roll >= 0.94 else "online"
        heard = presence != "unknown"
        ts = now - timedelta(seconds=health_age)
        devices.append({
            "id": dev, "site_id": f"site-{dev}", "hardware": "rpi4", "profile": "rpi4-cctv",
            "status": "enrolled", "presence": presence,
            "presence_at": now - timedelta(hours=2) if heard else None,
            "last_seen_at": ts if heard else None, "last_health_at": ts if heard else None,
            "last_health": box.health_fields(int(ts.timestamp() * 1000)) if heard else None,
            "health_interval_s": 10.0, "agent_version": "0.1.0", "boot_id": "b" * 12,
            "config_version": 3, "last_seq": rng.randint(1, 10**6), "created_at": now,
        })
    with registry.session() as s:
        s.execute(insert(Site), sites)
        s.execute(insert(Device), devices)
    return now


def time_get(client: Any, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path)
        out.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path}: {r.status_code} {r.data[:300]!r}")
    return out


def walk(client: Any, path: str) -> tuple[float, int]:
    """Every page of the device list, following ``Link: rel="next"``: (ms, devices read)."""
    t, read = time.perf_counter(), 0
    url: str | None = path
    while url:
        r = client.get(url)
        if r.status_code != 200:
            raise RuntimeError(f"GET {url}: {r.status_code} {r.data[:300]!r}")
        read += len(r.get_json())
        m = re.fullmatch(r'<([^>]+)>; rel="next"', r.headers.get("Link", ""))
        url = m.group(1) if m else None
    return (time.perf_counter() - t) * 1000, read


def run(devices: int, requests: int, database_url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dcor-bench-ui-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'registry.sqlite'}"
        registry = open_registry(url)
        try:
            t = time.monotonic()
            filled_at = fill(registry, devices)
            note(f"{devices} devices in the registry in {time.monotonic() - t:.1f}s")
            settings = load_settings(env={}, overrides={
                "data_dir": str(Path(tmp) / "hub"), "database_url": url,
                "influx_url": "http://127.0.0.1:9", "web_anonymous_viewer": True})
            # The app's clock stays at the fill: the mix of states must not turn stale while
            # the run goes on (no health arrives here), which would list every device.
            app = create_app(settings, registry=registry,
                             test_config={"DCOR_NOW": lambda: filled_at})
            opened = "/?" + urlencode({"open": place(*synth.site_of(0))})
            with app.test_client() as c:
                time_get(c, "/", 2)  # templates compiled, caches warm
                time_get(c, "/api/v1/devices", 2)
                page = time_get(c, "/", requests)
                api = time_get(c, "/api/v1/devices", requests)
                rows = c.get("/").get_data(as_text=True).count("data-device=")
                opened_ms = time_get(c, opened, max(5, requests // 4))
                walks = [walk(c, "/api/v1/devices") for _ in range(3)]
                if any(n != devices for _ms, n in walks):
                    raise RuntimeError(f"the API's pages gave {walks}, not {devices} devices")
        finally:
            registry.close()
    return {"bench": "fleet_ui", "devices": devices, "requests": requests,
            "page_p50_ms": percentile(page, 50), "page_p95_ms": percentile(page, 95),
            "api_p50_ms": percentile(api, 50), "api_p95_ms": percentile(api, 95),
            "page_rows": rows, "open_p50_ms": percentile(opened_ms, 50),
            "open_p95_ms": percentile(opened_ms, 95),
            "api_walk_ms": statistics.median(ms for ms, _n in walks),
            "database": url.split(":", 1)[0], **machine()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fleet_ui", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=5000)
    p.add_argument("--requests", type=int, default=40)
    p.add_argument("--database-url", default=None, help="an empty registry database")
    a = p.parse_args(argv)
    emit(run(a.devices, a.requests, a.database_url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
