"""InfluxDB line protocol, escaped by the rules of the v1 write API.

measurement: escape ``,`` and space; tag keys/values and field keys: escape ``,``, ``=`` and
space; string field values: double-quoted with ``"`` and ``\\`` escaped. Integers carry an
``i`` suffix, booleans are ``true``/``false``.

A backslash in a name is not escapable in 1.x (``\\\\`` is stored doubled, and a trailing one
swallows the separator that follows), so in measurements and tags it becomes ``/``; newlines,
which cannot be escaped at all outside string fields, become a space.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def _escape_key(s: str) -> str:
    return (s.replace("\\", "/").replace("\n", " ").replace(",", "\\,").replace("=", "\\=")
            .replace(" ", "\\ "))


def _escape_measurement(s: str) -> str:
    return s.replace("\\", "/").replace("\n", " ").replace(",", "\\,").replace(" ", "\\ ")


def _field_value(v: object) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}i"
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return None


def line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, object],
         ts_ms: int) -> str | None:
    """One point, or None if it would have no valid field (InfluxDB refuses such a line)."""
    parts = [_escape_measurement(measurement)]
    for k in sorted(tags):  # sorted tags are what InfluxDB stores anyway: cheaper to index
        tv = tags[k]
        if tv:  # empty tag values are invalid in line protocol
            parts.append(f"{_escape_key(k)}={_escape_key(tv)}")
    rendered = []
    for k, v in fields.items():
        fv = _field_value(v)
        if fv is not None:
            rendered.append(f"{_escape_key(k)}={fv}")
    if not rendered:
        return None
    return f"{','.join(parts)} {','.join(rendered)} {int(ts_ms)}"
