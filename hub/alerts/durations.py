"""Human durations for configuration: ``"30s"``, ``"5m"``, ``"1h30m"``, ``"500ms"`` or a number.

A bare number is seconds. Values are returned as float seconds; negative values are refused.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import BeforeValidator

_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: object) -> float:
    """Return seconds for a duration given as a number or a string like ``"1h30m"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s' or '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip().lower())
    else:
        raise ValueError("a duration is a number of seconds or a string like '30s' or '5m'")
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"duration {value!r} must be zero or positive and finite")
    return seconds


def _parse_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(
            f"cannot read duration {text!r}: use a number and a unit (ms, s, m, h, d), "
            "e.g. '30s', '5m' or '1h30m'"
        )
    return total


def format_duration(seconds: float) -> str:
    """Shortest human form, the inverse of ``parse_duration`` for whole seconds: 90 -> '1m30s'."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest = int(seconds)
    if rest == 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


# Pydantic field type: accepts the human forms, holds float seconds.
Duration = Annotated[float, BeforeValidator(parse_duration)]
