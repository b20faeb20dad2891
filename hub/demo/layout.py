"""The demo fleet's places: real Depok kecamatan, kelurahan and sites (pure data)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DemoSite:
    id: str
    name: str
    kecamatan: str
    kelurahan: str
    lat: float
    lon: float
    profile: str


# Real Depok places (coordinates approximate); the first six cover six kecamatan and all
# four profiles, so the default fleet already shows the grouping and the hardware mix.
DEPOK_SITES = (
    DemoSite("beji-margonda", "Tiang CCTV Jl. Margonda Raya", "Beji", "Kemiri Muka",
             -6.3733, 106.8321, "rpi5-cctv"),
    DemoSite("pancoranmas-terminal", "Terminal Terpadu Depok", "Pancoran Mas", "Depok",
             -6.3918, 106.8219, "jetson-orin-nano"),
    DemoSite("sukmajaya-tole-iskandar", "Jl. Tole Iskandar", "Sukmajaya", "Mekarjaya",
             -6.3980, 106.8440, "rpi4-cctv"),
    DemoSite("cimanggis-kantor-tugu", "Kantor Kelurahan Tugu", "Cimanggis", "Tugu",
             -6.3650, 106.8640, "kelurahan-office"),
    DemoSite("cilodong-alun-alun", "Alun-Alun Kota Depok", "Cilodong", "Kalimulya",
             -6.4133, 106.8315, "rpi5-cctv"),
    DemoSite("limo-raya-limo", "Jl. Raya Limo", "Limo", "Limo", -6.3690, 106.7810,
             "rpi4-cctv"),
    DemoSite("cimanggis-pasar-cisalak", "Jl. Raya Bogor - Pasar Cisalak", "Cimanggis",
             "Cisalak Pasar", -6.3850, 106.8660, "rpi5-cctv"),
    DemoSite("pancoranmas-puskesmas", "Puskesmas Pancoran Mas", "Pancoran Mas",
             "Pancoran Mas", -6.4080, 106.8110, "rpi4-cctv"),
    DemoSite("sukmajaya-simpang-juanda", "Simpang Jl. Ir. H. Juanda", "Sukmajaya", "Baktijaya",
             -6.3795, 106.8440, "jetson-orin-nano"),
    DemoSite("cilodong-kantor-kalibaru", "Kantor Kelurahan Kalibaru", "Cilodong", "Kalibaru",
             -6.4410, 106.8390, "kelurahan-office"),
    DemoSite("beji-kukusan", "Jl. Kukusan - Kampus UI", "Beji", "Kukusan", -6.3700, 106.8180,
             "rpi4-cctv"),
    DemoSite("pancoranmas-mampang", "Simpang Jl. Raya Sawangan - Mampang", "Pancoran Mas",
             "Mampang", -6.4010, 106.8060, "rpi5-cctv"),
)


def fleet_layout(count: int) -> list[tuple[str, DemoSite]]:
    """``count`` (device id, site) pairs; sites repeat (-02, -03...) past the table's end."""
    return [(f"{DEPOK_SITES[i % len(DEPOK_SITES)].id}-{i // len(DEPOK_SITES) + 1:02d}",
             DEPOK_SITES[i % len(DEPOK_SITES)]) for i in range(count)]


# Every kecamatan of Depok with its kelurahan (63 in all) and an approximate centre: where
# the simulated boxes (``hub.demo.simfleet``) stand. Coordinates are not surveyed: each
# kelurahan is placed on a small ring around its kecamatan's centre.
KECAMATAN: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("Beji", -6.372, 106.818, ("Beji", "Beji Timur", "Kemiri Muka", "Kukusan", "Pondok Cina",
                               "Tanah Baru")),
    ("Bojongsari", -6.395, 106.745, ("Bojongsari", "Bojongsari Baru", "Curug", "Duren Mekar",
                                     "Duren Seribu", "Pondok Petir", "Serua")),
    ("Cilodong", -6.430, 106.840, ("Cilodong", "Jatimulya", "Kalibaru", "Kalimulya",
                                   "Sukamaju")),
    ("Cimanggis", -6.370, 106.868, ("Cisalak Pasar", "Curug", "Harjamukti", "Mekarsari",
                                    "Pasir Gunung Selatan", "Tugu")),
    ("Cinere", -6.340, 106.785, ("Cinere", "Gandul", "Pangkalan Jati", "Pangkalan Jati Baru")),
    ("Cipayung", -6.425, 106.800, ("Bojong Pondok Terong", "Cipayung", "Cipayung Jaya",
                                   "Pondok Jaya", "Ratu Jaya")),
    ("Limo", -6.365, 106.782, ("Grogol", "Krukut", "Limo", "Meruyung")),
    ("Pancoran Mas", -6.398, 106.812, ("Depok", "Depok Jaya", "Mampang", "Pancoran Mas",
                                       "Rangkapan Jaya", "Rangkapan Jaya Baru")),
    ("Sawangan", -6.412, 106.765, ("Bedahan", "Cinangka", "Kedaung", "Pasir Putih",
                                   "Pengasinan", "Sawangan", "Sawangan Baru")),
    ("Sukmajaya", -6.395, 106.842, ("Abadijaya", "Baktijaya", "Cisalak", "Mekarjaya",
                                    "Sukmajaya", "Tirtajaya")),
    ("Tapos", -6.425, 106.882, ("Cilangkap", "Cimpaeun", "Jatijajar", "Leuwinanggung",
                                "Sukamaju Baru", "Sukatani", "Tapos")),
)
SIM_PROFILES = ("rpi4-cctv", "rpi5-cctv", "kelurahan-office", "jetson-orin-nano")
_RING_DEG = 0.008  # a kelurahan's distance from its kecamatan's centre (~0.9 km)
_POLE_DEG = 0.002  # a pole's distance from its kelurahan's point (~0.2 km)


def kelurahan_points() -> list[tuple[str, str, float, float]]:
    """(kecamatan, kelurahan, lat, lon) of all 63 kelurahan, the kecamatan taking turns (the
    first of each, then the second...), so even a small fleet spreads over the city."""
    rings = []
    for kec, lat, lon, kels in KECAMATAN:
        ring = []
        for j, kel in enumerate(kels):
            angle = 2 * math.pi * j / len(kels)
            ring.append((kec, kel, lat + _RING_DEG * math.sin(angle),
                         lon + _RING_DEG * math.cos(angle)))
        rings.append(ring)
    deepest = max(len(r) for r in rings)
    return [ring[j] for j in range(deepest) for ring in rings if j < len(ring)]


def sim_layout(device_ids: list[str]) -> list[tuple[str, DemoSite]]:
    """A pole site for each simulated box, dealt over the 63 kelurahan in turn (every
    kelurahan has one from 63 boxes on), the poles of a kelurahan on a circle around it."""
    points = kelurahan_points()
    out = []
    for i, device_id in enumerate(device_ids):
        kec, kel, lat, lon = points[i % len(points)]
        nth = i // len(points)
        angle = 2.4 * nth  # radians: successive poles fall on different sides
        out.append((device_id, DemoSite(
            f"site-{device_id}", f"Tiang CCTV {kel} {nth + 1:02d}", kec, kel,
            round(lat + _POLE_DEG * math.sin(angle), 5),
            round(lon + _POLE_DEG * math.cos(angle), 5), SIM_PROFILES[i % len(SIM_PROFILES)])))
    return out
