"""Human durations and sizes for configuration documents (``15s``, ``5m``, ``50MB``).

Configuration travels over the wire (``config/desired``), so agent and hub parse it alike.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
               "kib": 1024, "mib": 1024**2, "gib": 1024**3, None: 1}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like ``250ms``, ``15s``, ``5m``, ``2h``, ``1d``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '15s'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    raise ValueError(f"invalid duration {value!r}: use e.g. '500ms', '15s', '5m', '2h'")


def parse_size(value: Any) -> int:
    """Bytes from a number or a string like ``512KB``, ``50MB``, ``1GiB``."""
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or a string like '50MB'")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m:
            unit = m.group(2).lower() if m.group(2) else None
            size = float(m.group(1)) * _SIZE_UNITS[unit]
            if size.is_integer():
                return int(size)
    raise ValueError(f"invalid size {value!r}: use e.g. '512KB', '50MB', '1GiB'")


Duration = Annotated[float, BeforeValidator(parse_duration)]
ByteSize = Annotated[int, BeforeValidator(parse_size)]
