"""Box health from what the board exposes. A source that is absent is reported as absent.

- CPU, memory, disk, load: psutil.
- Temperature: the hottest ``/sys/class/thermal/thermal_zone*/temp`` (millidegrees).
- Raspberry Pi throttling/undervoltage: the firmware's ``get_throttled`` bit field, read from
  sysfs where the kernel exposes it (bit 0 undervoltage now, bit 2 throttled now, bit 16
  undervoltage has occurred, bit 18 throttling has occurred).
- Clock sync: the kernel's ``adjtimex`` status (``TIME_ERROR`` = not synchronised), which is
  what ``timedatectl``'s NTPSynchronized reports, with no daemon to ask.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import time
from pathlib import Path
from typing import Any

import psutil

THROTTLED_PATHS = (
    Path("/sys/devices/platform/soc/soc:firmware/get_throttled"),
    Path("/sys/devices/platform/soc/soc:firmware/raspberrypi-hwmon/get_throttled"),
)
THERMAL_ROOT = Path("/sys/class/thermal")
_TIME_ERROR = 5


def read_temperature_c(root: Path = THERMAL_ROOT) -> float | None:
    temps: list[float] = []
    for zone in sorted(root.glob("thermal_zone*")):
        try:
            milli = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        if -60_000 <= milli <= 200_000:  # outside that it is a broken sensor, not a reading
            temps.append(milli / 1000.0)
    return max(temps) if temps else None


def decode_throttled(flags: int) -> dict[str, bool]:
    return {
        "undervoltage_now": bool(flags & 0x1),
        "throttled_now": bool(flags & 0x4),
        "undervoltage_ever": bool(flags & 0x10000),
        "throttled_ever": bool(flags & 0x40000),
    }


def read_throttled(paths: tuple[Path, ...] = THROTTLED_PATHS) -> dict[str, bool]:
    for p in paths:
        try:
            return decode_throttled(int(p.read_text().strip(), 16))
        except (OSError, ValueError):
            continue
    return {}


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>: we only read the return value, but the kernel writes
    # the whole struct, so it must be full size (and generously padded).
    _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 256)]


def clock_synced() -> bool | None:
    """True/False from adjtimex; None where the call is not available."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR


class HealthCollector:
    """Samples the box. ``sample()`` is cheap enough to call every few seconds."""

    def __init__(self, disk_path: Path = Path("/")) -> None:
        self.disk_path = disk_path
        self._started = time.monotonic()
        psutil.cpu_percent(None)  # prime: the first call has no interval to measure over

    def sample(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uptime_s": round(time.monotonic() - self._started, 1)}
        out["cpu_pct"] = round(psutil.cpu_percent(None), 1)
        with contextlib.suppress(OSError):
            out["load1"] = round(psutil.getloadavg()[0], 2)
        vm = psutil.virtual_memory()
        out["mem_pct"] = round(vm.percent, 1)
        out["mem_used_mb"] = round((vm.total - vm.available) / 2**20, 1)
        try:
            du = psutil.disk_usage(str(self.disk_path))
            out["disk_pct"] = round(du.percent, 1)
            out["disk_free_mb"] = round(du.free / 2**20, 1)
        except OSError:
            pass
        temp = read_temperature_c()
        if temp is not None:
            out["temp_c"] = round(temp, 1)
        out.update(read_throttled())
        synced = clock_synced()
        if synced is not None:
            out["clock_synced"] = synced
        return out
