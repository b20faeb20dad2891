"""Query parameters the listings share (fleet, ``/api/v1/devices``, media, alerts): each given
at most once, and a ``limit`` read the same strict way, so they refuse the same things with
the same words. Pure: no Flask."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict


class QueryError(ValueError):
    """A query parameter is invalid; the message says which and what is allowed."""


def single(args: MultiDict[str, str], key: str) -> str:
    """The parameter as written, '' when it is not given; given twice is an error."""
    values = args.getlist(key)
    if len(values) > 1:
        raise QueryError(f"give {key!r} at most once")
    return values[0] if values else ""


def limit_of(raw: str | None, default: int, maximum: int) -> int:
    """``limit``: ``default`` when not given, else a whole number from 1 to ``maximum`` in
    ASCII digits (not "+5", "5.0" or other scripts' digits)."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise QueryError(f"limit must be a whole number from 1 to {maximum}")
    return int(raw)
