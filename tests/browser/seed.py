"""A city's fleet written straight into a live hub's registry, media store and InfluxDB:
real Depok kecamatan and kelurahan, sites with coordinates, devices with cameras and
snapshots (frames of the shared street videos), a week of history for one showcase device,
and firing alerts. Deterministic: the same fleet on every run."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hub.alerts.model import Observation, Subject
from hub.alerts.rules import default_rules
from hub.alerts.store import AlertStore
from hub.influx import InfluxClient
from hub.ingest.lineproto import line
from hub.registry.db import Registry
from hub.registry.models import Device, MediaItem, Site

ASSETS = Path(__file__).resolve().parents[2].parent / "shared" / "assets"
# (kecamatan, approximate centre lat, lon, kelurahan)
PLACES: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("Beji", -6.372, 106.818, ("Beji", "Beji Timur", "Kemiri Muka", "Kukusan", "Pondok Cina",
                               "Tanah Baru")),
    ("Pancoran Mas", -6.398, 106.812, ("Depok", "Depok Jaya", "Mampang", "Pancoran Mas",
                                       "Rangkapan Jaya")),
    ("Cimanggis", -6.370, 106.868, ("Tugu", "Cisalak Pasar", "Mekarsari", "Harjamukti",
                                    "Curug")),
    ("Sukmajaya", -6.395, 106.842, ("Mekarjaya", "Baktijaya", "Abadijaya", "Tirtajaya",
                                    "Sukmajaya")),
    ("Cilodong", -6.430, 106.840, ("Kalimulya", "Kalibaru", "Cilodong", "Sukamaju",
                                   "Jatimulya")),
    ("Limo", -6.365, 106.782, ("Limo", "Meruyung", "Grogol", "Krukut")),
    ("Sawangan", -6.410, 106.760, ("Sawangan", "Bedahan", "Pengasinan", "Pasir Putih")),
    ("Bojongsari", -6.395, 106.735, ("Bojongsari", "Duren Seribu", "Pondok Petir", "Serua")),
    ("Cinere", -6.335, 106.785, ("Cinere", "Gandul", "Pangkalan Jati", "Pangkalan Jati Baru")),
    ("Cipayung", -6.425, 106.800, ("Cipayung", "Bojong Pondok Terong", "Ratu Jaya",
                                   "Pondok Jaya")),
    ("Tapos", -6.425, 106.885, ("Tapos", "Leuwinanggung", "Sukatani", "Cimpaeun",
                                "Jatijajar")),
)
SHOWCASE = "beji-kemiri-muka-001"


@dataclass(frozen=True)
class SeededFleet:
    devices: list[str]
    tiles: int
    sites: int
    alert_ids: list[str]


def street_frames(count: int = 12) -> list[bytes]:
    """JPEG snapshots (320x180) from the shared street videos; grey frames if absent."""
    import cv2
    import numpy as np

    frames: list[bytes] = []
    for name in ("traffic_frames.mp4", "vtest_first250.avi"):
        cap = cv2.VideoCapture(str(ASSETS / "video" / name))
        index = 0
        while cap.isOpened() and len(frames) < count:
            ok, frame = cap.read()
            if not ok:
                break
            if index % 20 == 0:
                small = cv2.resize(frame, (320, 180), interpolation=cv2.INTER_AREA)
                frames.append(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])[1]
                              .tobytes())
            index += 1
        cap.release()
    while len(frames) < count:  # no assets: plain frames still exercise the wall
        grey = np.full((180, 320, 3), 40 + 15 * len(frames), dtype=np.uint8)
        frames.append(cv2.imencode(".jpg", grey)[1].tobytes())
    return frames


def _health(rng: random.Random, cams: dict[str, Any]) -> dict[str, Any]:
    return {"uptime_s": rng.randint(600, 900_000), "cpu_pct": round(rng.uniform(8, 70), 1),
            "mem_pct": round(rng.uniform(30, 80), 1), "disk_pct": round(rng.uniform(20, 70), 1),
            "temp_c": round(rng.uniform(42, 68), 1), "outbox_depth": rng.choice([0, 0, 0, 3, 12]),
            "clock_synced": True, "cameras": cams}


def seed_fleet(registry: Registry, media_root: Path, count: int, now: datetime,
               skip_sites: set[str] | None = None) -> SeededFleet:
    """``count`` devices over every kelurahan; about one in twenty is offline, late or has a
    camera in trouble, so the wall shows every colour."""
    rng = random.Random(8)
    frames = street_frames()
    kelurahan = [(kec, lat, lon, kel) for kec, lat, lon, kels in PLACES for kel in kels]
    ids: list[str] = []
    tiles = 0
    with registry.session() as s:
        for kec, lat, lon, kel in kelurahan:
            site_id = f"site-{kec}-{kel}".lower().replace(" ", "-")
            s.add(Site(id=site_id, name=f"Simpang {kel}", kecamatan=kec, kelurahan=kel,
                       lat=round(lat + rng.uniform(-0.012, 0.012), 5),
                       lon=round(lon + rng.uniform(-0.012, 0.012), 5)))
        for n in range(count):
            kec, _lat, _lon, kel = kelurahan[n % len(kelurahan)]
            site_id = f"site-{kec}-{kel}".lower().replace(" ", "-")
            dev = f"{kec}-{kel}".lower().replace(" ", "-")[:50] + f"-{n // len(kelurahan) + 1:03d}"
            ids.append(dev)
            roll = rng.random()
            presence, ago = ("offline", 900.0) if roll < 0.015 else ("online", 2.0)
            if 0.015 <= roll < 0.025:
                ago = 4 * 3600.0  # four health intervals without health: late (stale)
            cams: dict[str, Any] = {}
            for c in range(1 if n % 5 else 2):
                state = "streaming"
                if 0.025 <= roll < 0.045:
                    state = rng.choice(["frozen", "no_frames", "covered"])
                cams[f"cam{c + 1}"] = {"state": state, "fps": round(rng.uniform(4, 6), 1)}
            tiles += len(cams)
            s.add(Device(id=dev, site_id=site_id, hardware=rng.choice(["rpi4", "rpi5", "jetson"]),
                         profile="rpi5-cctv", created_at=now - timedelta(days=30),
                         presence=presence, presence_at=now - timedelta(seconds=ago),
                         last_seen_at=now - timedelta(seconds=ago),
                         last_health_at=now - timedelta(seconds=ago),
                         last_health=_health(rng, cams),
                         health_interval_s=3600.0,  # stays as seeded for the run
                         agent_version="0.1.0"))
            for cam in cams:
                ts_ms = int((now - timedelta(seconds=rng.uniform(5, 120))).timestamp() * 1000)
                rel = f"snapshots/{dev}/{cam}/{ts_ms}-s{n}.jpg"
                path = media_root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                data = frames[(n + int(cam[-1])) % len(frames)]
                path.write_bytes(data)
                s.add(MediaItem(id=f"{dev}:snapshot:s{n}{cam}", device_id=dev, camera=cam,
                                kind="snapshot", media_id=f"s{n}{cam}", ts_ms=ts_ms, path=rel,
                                size=len(data), created_at=now))
    alerts = seed_alerts(registry, ids[:3], now)
    return SeededFleet(ids, tiles, len(kelurahan), alerts)


def seed_alerts(registry: Registry, devices: list[str], now: datetime) -> list[str]:
    """Hot boxes (rule box-hot, desk kominfo), firing since a few minutes."""
    rules = default_rules()
    store = AlertStore(registry, "seed")
    subjects = [Subject("device", "Beji", "Beji", device=d) for d in devices]
    for step in (-600, -300, -1):
        at = now + timedelta(seconds=step)
        store.step(rules, [Observation(sub, "box-hot", True, at, value=84.5)
                           for sub in subjects], at)
    return sorted(a.id for a in store.load(now).alerts.values() if a.status == "firing")


def seed_history(influx: InfluxClient, registry: Registry, media_root: Path, device: str,
                 now: datetime) -> None:
    """A week of health, camera health, detections and events for one device."""
    rng = random.Random(3)
    tags = {"device": device, "kecamatan": "Beji", "kelurahan": "Kemiri Muka"}
    lines: list[str] = []
    end = int(now.timestamp() * 1000)
    step_ms = 300_000
    for i in range(7 * 288):
        ts = end - i * step_ms
        if i < 12:  # the last hour at 30 s as well, so the 1 h chart has detail
            for j in range(10):
                lines += _health_lines(rng, tags, ts - j * 30_000, i)
        lines += _health_lines(rng, tags, ts, i)
    for i in range(200):
        ts = end - i * 1_800_000
        for cls, base in (("car", 40), ("motorcycle", 90), ("person", 25), ("bus", 3)):
            lines.append(line("object_counts", {**tags, "camera": "cam1", "class": cls},
                              {"count": max(0, int(rng.gauss(base, base / 4))), "seq": i},
                              ts) or "")
    with registry.session() as s:
        frames = street_frames(4)
        for k, (kind, ago_s) in enumerate((("crowd", 120), ("zone_enter", 1500),
                                           ("frozen", 3000))):
            ts = end - ago_s * 1000
            ev = f"ev-{k}"
            lines.append(line("events", {**tags, "camera": "cam1", "kind": kind},
                              {"id": ev, "status": "raised" if kind != "zone_enter"
                               else "instant", "label": "person", "count": 14 - k * 4,
                               "snapshot": f"e{k}"}, ts) or "")
            rel = f"snapshots/{device}/cam1/{ts}-e{k}.jpg"
            (media_root / rel).parent.mkdir(parents=True, exist_ok=True)
            (media_root / rel).write_bytes(frames[k])
            s.add(MediaItem(id=f"{device}:snapshot:e{k}", device_id=device, camera="cam1",
                            kind="snapshot", media_id=f"e{k}", event_id=ev, ts_ms=ts, path=rel,
                            size=len(frames[k]), created_at=now))
    for start in range(0, len(lines), 5000):
        influx.write("\n".join(x for x in lines[start:start + 5000] if x).encode())


def _health_lines(rng: random.Random, tags: dict[str, str], ts: int, i: int) -> list[str]:
    day = (ts // 3_600_000) % 24
    busy = 1.0 + (0.6 if 6 <= (day + 7) % 24 <= 20 else 0.0)  # WIB daytime traffic
    # Field types as the ingest writes them (a shard refuses a field of another type).
    out = [line("health", tags, {"cpu_pct": float(round(min(99.0, rng.gauss(
        28 * busy, 5)), 1)), "temp_c": float(round(rng.gauss(52 + 6 * busy, 1.5), 1)),
        "outbox_depth": max(0, int(rng.gauss(2, 3))) if i % 97 else 340}, ts)]
    for cam, fps in (("cam1", 5.0), ("cam2", 4.0)):
        out.append(line("camera_health", {**tags, "camera": cam},
                        {"fps": round(rng.gauss(fps, 0.3), 2),
                         "inference_ms": round(rng.gauss(38 * busy, 4), 1)}, ts))
    return [x for x in out if x]


def kecamatan_geojson() -> str:
    """Rough kecamatan areas (hexagons around each centre) as a GeoJSON FeatureCollection,
    with a name key as Indonesia's BIG data writes it."""
    import json
    import math

    features = []
    for kec, lat, lon, _kels in PLACES:
        ring = [[round(lon + 0.02 * math.cos(math.radians(a)), 5),
                 round(lat + 0.018 * math.sin(math.radians(a)), 5)] for a in range(0, 360, 60)]
        features.append({"type": "Feature", "properties": {"WADMKC": kec},
                         "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}})
    return json.dumps({"type": "FeatureCollection", "features": features})


def utc_now() -> datetime:
    return datetime.now(UTC)
