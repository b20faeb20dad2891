"""Synthetic telemetry that looks like a roadside box's: pure, seeded, no I/O.

The numbers wander like a Pi 4's (CPU 20-70 %, 45-70 degrees, a camera at ~10 fps) so
InfluxDB sees realistic field values; the payloads are the real wire models, so what the hub
reads is exactly what an agent sends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import msgspec

from dcor_wire import payloads

CLASSES = ("person", "car", "motorcycle", "bus", "truck", "bicycle")
KECAMATAN = ("Beji", "Bojongsari", "Cilodong", "Cimanggis", "Cinere", "Cipayung",
             "Limo", "Pancoran Mas", "Sawangan", "Sukmajaya", "Tapos")


def device_ids(n: int, prefix: str = "sim") -> list[str]:
    """``sim-00001``... wire-valid ids, stable for a given n and prefix."""
    width = max(5, len(str(n)))
    return [f"{prefix}-{i:0{width}d}" for i in range(1, n + 1)]


def site_of(index: int) -> tuple[str, str]:
    """(kecamatan, kelurahan) of the index-th device: 11 kecamatan, 63 kelurahan."""
    kel = index % 63
    return KECAMATAN[kel % len(KECAMATAN)], f"Kelurahan {kel + 1:02d}"


@dataclass
class SyntheticBox:
    """The health and detections of one simulated box, as the agent's producers give them."""

    device_id: str
    seed: int = 0
    cameras: tuple[str, ...] = ("cam1",)
    _rng: random.Random = field(init=False)
    _cpu: float = field(init=False)
    _temp: float = field(init=False)
    _uptime0_ms: int = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.device_id}:{self.seed}")
        self._cpu = self._rng.uniform(20, 50)
        self._temp = self._rng.uniform(45, 60)
        self._uptime0_ms = -1

    def health_fields(self, ts_ms: int, outbox_depth: int = 0, outbox_bytes: int = 0,
                      outbox_oldest_s: float = 0.0, reconnects: int = 0) -> dict[str, Any]:
        """Fields of a ``Health`` payload (``seq`` is added by the outbox)."""
        r = self._rng
        if self._uptime0_ms < 0:
            self._uptime0_ms = ts_ms - r.randint(600, 86_400) * 1000
        self._cpu = min(95.0, max(5.0, self._cpu + r.gauss(0, 3)))
        self._temp = min(80.0, max(40.0, self._temp + r.gauss(0, 0.5)))
        cams = {c: {"state": "streaming", "fps": round(r.uniform(9.0, 10.0), 1),
                    "dropped": r.randint(0, 3), "inference_ms": round(r.uniform(60, 90), 1)}
                for c in self.cameras}
        return {
            "ts": ts_ms, "uptime_s": round((ts_ms - self._uptime0_ms) / 1000.0, 1),
            "cpu_pct": round(self._cpu, 1), "load1": round(self._cpu / 25.0, 2),
            "mem_pct": round(r.uniform(35, 55), 1), "mem_used_mb": round(r.uniform(1400, 2200)),
            "disk_pct": 41.5, "disk_free_mb": 17_800.0, "temp_c": round(self._temp, 1),
            "throttled_now": False, "throttled_ever": False, "undervoltage_now": False,
            "undervoltage_ever": False, "clock_synced": True, "outbox_depth": outbox_depth,
            "outbox_bytes": outbox_bytes, "outbox_oldest_s": outbox_oldest_s,
            "outbox_dropped": 0, "reconnects": reconnects, "cameras": cams,
        }

    def detections_fields(self, camera: str, ts_ms: int, interval_ms: int) -> dict[str, Any]:
        """Fields of a ``Detections`` payload for one camera and interval."""
        r = self._rng
        seen = r.sample(CLASSES, k=r.randint(1, 3))
        counts = {c: r.randint(1, 12) for c in seen}
        return {
            "ts": ts_ms, "camera": camera, "interval_ms": interval_ms,
            "frames": int(interval_ms / 1000 * 5), "counts": counts,
            "tracks": {c: n + r.randint(0, 5) for c, n in counts.items()},
            "max_score": {c: round(r.uniform(0.5, 0.95), 2) for c in seen},
        }


def health_payload(box: SyntheticBox, seq: int, ts_ms: int) -> bytes:
    """A complete, validated ``health`` message body."""
    return payloads.encode(_convert(box.health_fields(ts_ms), seq, payloads.Health))


def detections_payload(box: SyntheticBox, seq: int, ts_ms: int, camera: str = "cam1",
                       interval_ms: int = 10_000) -> bytes:
    """A complete, validated ``detections`` message body."""
    fields = box.detections_fields(camera, ts_ms, interval_ms)
    return payloads.encode(_convert(fields, seq, payloads.Detections))


def _convert(fields: dict[str, Any], seq: int, model: type[Any]) -> Any:
    return msgspec.convert({**fields, "seq": seq}, model)
