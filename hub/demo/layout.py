"""The demo fleet's places: real Depok kecamatan, kelurahan and sites (pure data)."""

from __future__ import annotations

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
