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
from collections.abc import Iterable, Mapping
from typing import Any


def _escape_key(s: str) -> str:
    return (s.replace("\\", "/").replace("\n", " ").replace(",", "\\,").replace("=", "\\=")
            .replace(" ", "\\ "))


def _escape_measurement(s: str) -> str:
    return s.replace("\\", "/").replace("\n", " ").replace(",", "\\,").replace(" ", "\\ ")


# Names repeat endlessly (field keys, tag keys, device ids, kelurahan), so their escaped
# form is remembered; bounded so a flood of odd names cannot grow it without limit.
_ESCAPED: dict[str, str] = {}
_ESCAPED_MAX = 200_000


def _key(s: str) -> str:
    hit = _ESCAPED.get(s)
    if hit is None:
        hit = _escape_key(s)
        if len(_ESCAPED) >= _ESCAPED_MAX:
            _ESCAPED.clear()
        _ESCAPED[s] = hit
    return hit


def _field_value(v: object) -> str | None:
    t = type(v)  # exact types first: the common case, and bool is a subclass of int
    if t is float:
        return repr(v) if math.isfinite(v) else None  # type: ignore[arg-type]
    if t is int:
        return f"{v}i"
    if t is bool:
        return "true" if v else "false"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{int(v)}i"
    if isinstance(v, float):
        return repr(float(v)) if math.isfinite(v) else None
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return None


# The "measurement,tag=value,..." head of a line, per measurement and tag set (bounded).
_HEADS: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}


def _head(measurement: str, tags: Mapping[str, str]) -> str:
    key = (measurement, tuple(tags.items()))
    head = _HEADS.get(key)
    if head is None:
        parts = [_escape_measurement(measurement)]
        for k in sorted(tags):  # sorted tags are what InfluxDB stores anyway: cheaper to index
            tv = tags[k]
            if tv:  # empty tag values are invalid in line protocol
                parts.append(f"{_key(k)}={_key(tv)}")
        head = ",".join(parts)
        if len(_HEADS) >= _ESCAPED_MAX:
            _HEADS.clear()
        _HEADS[key] = head
    return head


def head(measurement: str, tags: Mapping[str, str]) -> str:
    """``measurement,tag=value,...`` escaped, tags sorted, empty tag values left out."""
    return _head(measurement, tags)


def render_fields(pairs: Iterable[tuple[str, object]]) -> str:
    """``key=value,...`` for the pairs whose value InfluxDB can store (None, NaN, lists and
    such are left out); "" when none can be."""
    rendered: list[str] = []
    add = rendered.append
    for k, v in pairs:
        t = type(v)
        # The common cases inline: this runs for every field of every message.
        if t is float:
            if math.isfinite(v):  # type: ignore[arg-type]
                add(f"{_ESCAPED.get(k) or _key(k)}={v!r}")
        elif t is int:
            add(f"{_ESCAPED.get(k) or _key(k)}={v}i")
        elif t is bool:
            add(f"{_ESCAPED.get(k) or _key(k)}={'true' if v else 'false'}")
        elif v is not None:
            fv = _field_value(v)
            if fv is not None:
                add(f"{_ESCAPED.get(k) or _key(k)}={fv}")
    return ",".join(rendered)


def struct_fields(obj: Any, skip: frozenset[str] = frozenset(), *,
                  fields: Iterable[str] | None = None) -> str:
    """``render_fields`` of a msgspec Struct's attributes in declaration order, except
    ``skip`` (or only ``fields``)."""
    names = _struct_names(type(obj), skip) if fields is None else fields
    return render_fields([(n, getattr(obj, n)) for n in names])


_NAMES: dict[tuple[type, frozenset[str]], tuple[str, ...]] = {}


def _struct_names(cls: type, skip: frozenset[str]) -> tuple[str, ...]:
    names = _NAMES.get((cls, skip))
    if names is None:
        declared: tuple[str, ...] = cls.__struct_fields__  # type: ignore[attr-defined]
        names = _NAMES[(cls, skip)] = tuple(n for n in declared if n not in skip)
    return names


def line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, object],
         ts_ms: int) -> str | None:
    """One point, or None if it would have no valid field (InfluxDB refuses such a line)."""
    rendered = render_fields(fields.items())
    if not rendered:
        return None
    return f"{_head(measurement, tags)} {rendered} {int(ts_ms)}"
