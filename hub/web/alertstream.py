"""Live notifications for the room over server-sent events.

The cursor is a notification's ``seq`` in the registry (every evaluator process writes there,
so any web worker serves every notification). One ``NotificationFeed`` per app watches the
newest ``seq`` (one cheap query every ``poll_s``, only while someone listens) and wakes the
waiting streams; each stream then reads what lies beyond its own cursor.

People act on alerts without a notification (acknowledge, assign, note): the feed also
watches the newest alert event, and a stream sends ``event: changed`` (no id, so the cursor
stays) when one happened, so a console open at another desk redraws what was acknowledged.

A stream: ``retry:`` first, then ``id: <seq>`` + ``data: <json>`` per notification, a comment
line as heartbeat every ``heartbeat_s`` (so proxies keep the connection and a gone client is
noticed), and an end after ``max_age_s``: the browser reconnects by itself with
``Last-Event-ID`` and misses nothing. Streams are threads of the threaded WSGI server, so they
are bounded in time rather than in number.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from hub.alerts.model import Notification
from hub.alerts.store import notifications_after
from hub.alerts.tables import AlertEventRow, NotificationRow
from hub.registry.db import Registry

log = logging.getLogger(__name__)

RETRY_MS = 2000


def sse_event(seq: int, data: dict[str, Any]) -> str:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # JSON never holds a raw newline, so one data line carries it.
    return f"id: {seq}\ndata: {body}\n\n"


SSE_CHANGED = "event: changed\ndata: {}\n\n"


def sse_comment(text: str) -> str:
    return f": {text}\n\n"


def parse_cursor(value: str | None) -> int | None:
    """A ``Last-Event-ID`` or ``after`` value: a non-negative integer, else None."""
    if value is None:
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


class NotificationFeed:
    """The newest notification ``seq``, watched by one thread while streams are open."""

    def __init__(self, registry: Registry, poll_s: float = 0.2, idle_s: float = 5.0) -> None:
        self.registry = registry
        self.poll_s = poll_s
        self.idle_s = idle_s
        self._cond = threading.Condition()
        self._latest = -1
        self._changes = -1  # the newest alert event id
        self._listeners = 0
        self._thread: threading.Thread | None = None

    @property
    def latest(self) -> int:
        """The newest seq seen by the watcher (-1 before its first look)."""
        with self._cond:
            return self._latest

    @property
    def changes(self) -> int:
        """The newest alert event id seen by the watcher (-1 before its first look)."""
        with self._cond:
            return self._changes

    def newest(self) -> int:
        with self.registry.session() as s:
            return int(s.scalar(select(func.max(NotificationRow.seq))) or 0)

    def newest_both(self) -> tuple[int, int]:
        """The newest notification seq and alert event id, in one session."""
        with self.registry.session() as s:
            return (int(s.scalar(select(func.max(NotificationRow.seq))) or 0),
                    int(s.scalar(select(func.max(AlertEventRow.id))) or 0))

    def wait_beyond(self, seq: int, timeout: float, change: int | None = None) -> bool:
        """Block until a notification after ``seq`` exists, or (given ``change``) an alert
        event after ``change`` (True), or ``timeout`` (False)."""
        with self._cond:
            self._listeners += 1
            self._ensure_thread()
            try:
                return self._cond.wait_for(
                    lambda: self._latest > seq or (change is not None and self._changes > change),
                    timeout)
            finally:
                self._listeners -= 1

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._watch, name="dcor.web.alert-feed",
                                            daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        idle_since = time.monotonic()
        while True:
            try:
                latest, changes = self.newest_both()
            except SQLAlchemyError as exc:
                log.warning("alert feed cannot read the registry: %s", exc)
                latest, changes = self._latest, self._changes
            with self._cond:
                if latest != self._latest or changes != self._changes:
                    self._latest, self._changes = latest, changes
                    self._cond.notify_all()
                if self._listeners:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.idle_s:
                    self._thread = None  # the next listener starts a new watcher
                    return
            time.sleep(self.poll_s)


def stream(
    feed: NotificationFeed,
    cursor: int,
    render: Callable[[Notification], dict[str, Any] | None],
    *,
    heartbeat_s: float = 15.0,
    max_age_s: float = 300.0,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[str]:
    """The text of one SSE response. ``render`` gives an event's data, or None to skip it
    (another desk's)."""
    started = last_sent = monotonic()
    change = feed.changes if feed.changes >= 0 else feed.newest_both()[1]
    yield f"retry: {RETRY_MS}\n" + sse_comment(f"cursor {cursor}")
    while monotonic() - started < max_age_s:
        wait = max(0.0, min(heartbeat_s - (monotonic() - last_sent),
                            max_age_s - (monotonic() - started)))
        if feed.wait_beyond(cursor, wait, change):
            with feed.registry.session() as s:
                batch = notifications_after(s, cursor, limit=200)
            if not batch:  # rows gone meanwhile: do not spin on the same cursor
                cursor = max(cursor, feed.latest)
            chunks = []
            for seq, n in batch:
                cursor = seq
                data = render(n)
                if data is not None:
                    chunks.append(sse_event(seq, {**data, "seq": seq}))
            if feed.changes > change:
                change = feed.changes
                if not chunks:  # a notification redraws the console anyway
                    chunks.append(SSE_CHANGED)
            if chunks:
                last_sent = monotonic()
                yield "".join(chunks)
                continue
        if monotonic() - last_sent >= heartbeat_s:
            last_sent = monotonic()
            yield sse_comment("heartbeat")
