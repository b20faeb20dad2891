"""The wall's live picture of the fleet (pure): one compact entry per device, the camera
wall's tiles, roll-ups per kecamatan and kelurahan, and what changed between two pictures.

``hub.web.fleetfeed`` builds a picture every second from ``fleet.device_json`` and streams
only the difference; the wall's template draws its first paint from the same functions, so
the page and every later update agree. No Flask, no SQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from hub.web.fleet import BUCKET_OF_STATE, BUCKETS

# How a tile looks: the device's state while the box is not online (nobody watches its
# cameras then), else its camera's own state.
CAMERA_TONES: Final = {"streaming": "ok", "unknown": "unknown", "detector_stalled": "warn",
                       "no_frames": "bad", "covered": "bad", "frozen": "bad"}
DEVICE_TONES: Final = {"online": "ok", "stale": "warn", "offline": "bad", "unknown": "unknown",
                       "decommissioned": "retired"}
# Worst first: the colour of a kelurahan or a site with devices in several states.
WORST_FIRST: Final = ("offline", "degraded", "unknown", "online", "decommissioned")
SEP: Final = "\u001f"  # joins kecamatan and kelurahan into one key (never in a name)

Entry = dict[str, Any]
Picture = dict[str, Entry]


def entry_of(device: Mapping[str, Any]) -> Entry:
    """The compact form of one ``device_json`` that the stream sends."""
    cams = []
    for c in device.get("cameras") or []:
        snap = c.get("latest_snapshot") or None
        cams.append({"cam": c["camera"], "state": c.get("state", "unknown"),
                     "snap": snap["url"] if snap else None,
                     "ts": (snap.get("ts") or {}).get("wib") if snap else None})
    return {"id": device["id"], "site": device.get("site", ""),
            "site_name": device.get("site_name", ""), "kec": device.get("kecamatan", ""),
            "kel": device.get("kelurahan", ""), "state": device.get("state", "unknown"),
            "cams": cams}


def picture_of(devices: Iterable[Mapping[str, Any]]) -> Picture:
    return {e["id"]: e for e in (entry_of(d) for d in devices)}


def bucket(state: str) -> str:
    return BUCKET_OF_STATE.get(state, "unknown")


def worst(counts: Mapping[str, int]) -> str:
    for b in WORST_FIRST:
        if counts.get(b):
            return b
    return "unknown"


def place_key(name: str) -> tuple[int, str]:
    # Places not recorded go last, as on the fleet page.
    return (0, name.casefold()) if name else (1, "")


@dataclass(frozen=True)
class Tile:
    """One cell of the camera wall: a camera, or a box without cameras."""

    key: str  # "<device>/<camera>" or "<device>"
    device: str
    camera: str | None
    status: str  # a device state while the box is not online, else the camera's state
    tone: str  # ok | warn | bad | unknown | retired
    snap: str | None
    snap_time: str | None
    kec: str
    kel: str
    site_name: str
    order: str  # sort key the page script uses to insert a new tile in its place


def tile_look(device_state: str, camera_state: str | None) -> tuple[str, str]:
    if device_state != "online" or camera_state is None:
        return device_state, DEVICE_TONES.get(device_state, "unknown")
    return camera_state, CAMERA_TONES.get(camera_state, "warn")


def _order(e: Entry, cam: str) -> str:
    kec, kel = place_key(e["kec"]), place_key(e["kel"])
    return SEP.join((f"{kec[0]}{kec[1]}", f"{kel[0]}{kel[1]}", e["id"], cam))


def tiles_of(e: Entry) -> list[Tile]:
    base = {"device": e["id"], "kec": e["kec"], "kel": e["kel"],
            "site_name": e["site_name"] or e["site"]}
    if not e["cams"]:
        status, tone = tile_look(e["state"], None)
        return [Tile(key=e["id"], camera=None, status=status, tone=tone, snap=None,
                     snap_time=None, order=_order(e, ""), **base)]
    out = []
    for c in e["cams"]:
        status, tone = tile_look(e["state"], c["state"])
        out.append(Tile(key=f"{e['id']}/{c['cam']}", camera=c["cam"], status=status,
                        tone=tone, snap=c["snap"], snap_time=c["ts"],
                        order=_order(e, c["cam"]), **base))
    return out


def wall_tiles(picture: Picture, kecamatan: str | None = None) -> list[Tile]:
    """Every tile in a stable order (kecamatan, kelurahan, device, camera): positions on a
    wall should not move when states change."""
    out = [t for e in picture.values() if kecamatan is None or e["kec"] == kecamatan
           for t in tiles_of(e)]
    return sorted(out, key=lambda t: t.order)


def tile_size(count: int) -> str:
    """The tile size class that lets ``count`` tiles fit a 1920x1080 wall's middle panel."""
    for limit, size in ((12, "xl"), (30, "l"), (80, "m"), (200, "s"), (420, "xs")):
        if count <= limit:
            return size
    return "xxs"


@dataclass
class KelurahanRollup:
    name: str
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def worst(self) -> str:
        return worst(self.counts)


@dataclass
class KecamatanRollup:
    name: str
    counts: Counter[str] = field(default_factory=Counter)
    kelurahan: list[KelurahanRollup] = field(default_factory=list)

    @property
    def worst(self) -> str:
        return worst(self.counts)


def rollup(picture: Picture) -> list[KecamatanRollup]:
    """Device states counted per kecamatan and kelurahan, places sorted by name."""
    tree: dict[str, dict[str, Counter[str]]] = {}
    for e in picture.values():
        tree.setdefault(e["kec"], {}).setdefault(e["kel"], Counter())[bucket(e["state"])] += 1
    out = []
    for kec in sorted(tree, key=place_key):
        k = KecamatanRollup(kec)
        for kel in sorted(tree[kec], key=place_key):
            k.kelurahan.append(KelurahanRollup(kel, tree[kec][kel]))
            k.counts.update(tree[kec][kel])
        out.append(k)
    return out


def counts_json(c: Mapping[str, int]) -> dict[str, int]:
    return {b: int(c.get(b, 0)) for b in BUCKETS}


def rollup_json(picture: Picture) -> dict[str, Any]:
    """The roll-up as the stream sends it: totals, per kecamatan, per kecamatan+kelurahan."""
    total: Counter[str] = Counter()
    kec: dict[str, dict[str, int]] = {}
    kel: dict[str, dict[str, int]] = {}
    for k in rollup(picture):
        total.update(k.counts)
        kec[k.name] = counts_json(k.counts)
        for lg in k.kelurahan:
            kel[k.name + SEP + lg.name] = counts_json(lg.counts)
    return {"total": counts_json(total), "kec": kec, "kel": kel}


def site_states(picture: Picture) -> dict[str, str]:
    """Each site's worst device bucket (the map's colours)."""
    per: dict[str, Counter[str]] = {}
    for e in picture.values():
        per.setdefault(e["site"], Counter())[bucket(e["state"])] += 1
    return {site: worst(c) for site, c in per.items()}


def diff(old: Picture, new: Picture) -> tuple[list[Entry], list[str]]:
    """Entries new or changed in ``new``, and ids gone from it."""
    changed = [e for dev, e in sorted(new.items()) if old.get(dev) != e]
    removed = sorted(set(old) - set(new))
    return changed, removed


def message(picture: Picture, changed: list[Entry], removed: list[str], *, full: bool,
            at: str | None) -> dict[str, Any]:
    """One stream event: the devices to redraw and the roll-up after them."""
    return {"full": full, "at": at, "count": len(picture), "devices": changed,
            "removed": removed, "rollup": rollup_json(picture)}
