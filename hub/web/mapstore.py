"""The map's data: site coordinates from the registry, and the kecamatan boundaries an admin
uploaded, kept as one JSON file in the hub's data folder (``<data_dir>/map/boundaries.json``)
beside the media store, which every web worker of a hub already shares. Written to a
temporary file and renamed, so a reader never sees half of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from sqlalchemy import select

from dcor_fs import write_atomic
from hub.registry.db import Registry
from hub.registry.models import Site
from hub.web.mapgeo import Area, areas_from_json, areas_json

FILENAME: Final = "boundaries.json"


@dataclass(frozen=True)
class SiteRecord:
    id: str
    name: str
    kecamatan: str
    kelurahan: str
    lat: float | None
    lon: float | None


@dataclass(frozen=True)
class Layer:
    areas: list[Area]
    filename: str
    uploaded_by: str
    uploaded_at: str  # ISO 8601 UTC


def load_sites(registry: Registry) -> list[SiteRecord]:
    with registry.session() as s:
        return [SiteRecord(x.id, x.name, x.kecamatan, x.kelurahan, x.lat, x.lon)
                for x in s.scalars(select(Site).order_by(Site.id))]


def load_boundaries(folder: Path | None) -> Layer | None:
    """The uploaded boundaries, or None (none uploaded, or the file is unreadable)."""
    if folder is None:
        return None
    try:
        raw = json.loads((folder / FILENAME).read_text(encoding="utf-8"))
        return Layer(areas_from_json(raw["areas"]), str(raw.get("filename", "")),
                     str(raw.get("uploaded_by", "")), str(raw.get("uploaded_at", "")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # a damaged file: the map falls back to the outline of the sites


def save_boundaries(folder: Path, areas: list[Area], *, filename: str, who: str,
                    now: datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"filename": filename[:200], "uploaded_by": who[:80],
                       "uploaded_at": now.isoformat(), "areas": areas_json(areas)},
                      ensure_ascii=False, separators=(",", ":"))
    write_atomic(folder / FILENAME, body.encode("utf-8"))


def delete_boundaries(folder: Path) -> bool:
    try:
        (folder / FILENAME).unlink()
    except FileNotFoundError:
        return False
    return True
