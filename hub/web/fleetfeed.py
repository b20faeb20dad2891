"""The fleet's live state for the wall and the map, over server-sent events.

One ``FleetFeed`` per web process rebuilds the fleet's picture (``hub.web.livefleet``) every
``poll_s`` while someone listens: device states are computed here, on the server, from the
registry and the clock, so a box that stops reporting turns stale and offline on every wall
without any page doing arithmetic. Each new picture that differs from the last gets the next
version; a short history of differences lets a stream send only what changed.

The feed also watches a signature of the active alerts (``alerts`` in an event is true when
it changed: an acknowledgement in one browser then reaches every wall, though actions make
no notification of their own).

A stream: ``retry:`` first, then ``event: fleet`` with the whole picture (``full: true``),
then one ``event: fleet`` per change, and ``event: ping`` every ``heartbeat_s`` (the page
shows its "connection lost" banner when pings stop). Event ids are ``<epoch>-<version>``;
a reconnect with a ``Last-Event-ID`` of this process's epoch gets only the changes since,
anything else (another worker, a restart) the whole picture again. Streams end after
``max_age_s``; the browser reconnects by itself.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from hub.web.livefleet import Entry, Picture, diff, message

log = logging.getLogger(__name__)

RETRY_MS = 2000
HISTORY = 120  # versions kept for reconnects (two minutes at one change a second)


def sse(event: str, data: dict[str, Any], event_id: str | None = None) -> str:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {body}\n\n"


class FleetFeed:
    """The newest picture and its version, rebuilt by one thread while streams are open.

    ``build`` returns ``(picture, time text, alert signature)``; it runs on the watcher
    thread (or on the caller's when the picture is old).
    """

    def __init__(self, build: Callable[[], tuple[Picture, str, str]], poll_s: float = 1.0,
                 idle_s: float = 10.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.build = build
        self._mono = monotonic
        self._built = float("-inf")
        self.poll_s = poll_s
        self.idle_s = idle_s
        self.epoch = secrets.token_hex(4)
        self._cond = threading.Condition()
        self._version = 0
        self._picture: Picture | None = None
        self._at = ""
        self._alerts = ""
        self._history: deque[tuple[int, list[Entry], list[str], bool]] = deque(maxlen=HISTORY)
        self._listeners = 0
        self._thread: threading.Thread | None = None

    def current(self) -> tuple[int, Picture, str]:
        """Version, picture and its time; built here when the watcher has not built one
        within two polls (nobody was listening)."""
        with self._cond:
            if self._picture is not None and self._mono() - self._built < 2 * self.poll_s:
                return self._version, self._picture, self._at
        picture, at, alerts = self.build()
        with self._cond:
            self._apply(picture, at, alerts)
            return self._version, self._picture or {}, self._at

    def _apply(self, picture: Picture, at: str, alerts: str) -> None:
        """Store a new picture (under the lock); a new version only when something changed."""
        self._at = at
        self._built = self._mono()
        if self._picture is None:
            self._picture, self._version, self._alerts = picture, 1, alerts
            self._cond.notify_all()
            return
        changed, removed = diff(self._picture, picture)
        alerts_changed = alerts != self._alerts
        if changed or removed or alerts_changed:
            self._version += 1
            self._history.append((self._version, changed, removed, alerts_changed))
            self._picture, self._alerts = picture, alerts
            self._cond.notify_all()

    def since(self, version: int) -> tuple[int, list[Entry], list[str], bool] | None:
        """Changes after ``version`` merged (devices, ids gone, whether alerts changed), with
        the version they lead to; None when the history no longer reaches back that far."""
        with self._cond:
            if version == self._version:
                return version, [], [], False
            steps = [h for h in self._history if h[0] > version]
            if not steps or steps[0][0] != version + 1:
                return None
            merged: dict[str, Entry] = {}
            gone: set[str] = set()
            alerts = any(step[3] for step in steps)
            for _v, changed, removed, _a in steps:
                for e in changed:
                    merged[e["id"]] = e
                    gone.discard(e["id"])
                for dev in removed:
                    merged.pop(dev, None)
                    gone.add(dev)
            return self._version, [merged[k] for k in sorted(merged)], sorted(gone), alerts

    def wait_beyond(self, version: int, timeout: float) -> bool:
        with self._cond:
            self._listeners += 1
            self._ensure_thread()
            try:
                return self._cond.wait_for(lambda: self._version > version, timeout)
            finally:
                self._listeners -= 1

    def picture(self) -> tuple[Picture, str]:
        with self._cond:
            return self._picture or {}, self._at

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._watch, name="dcor.web.fleet-feed",
                                            daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        idle_since = self._mono()
        while True:
            started = self._mono()
            try:
                picture, at, alerts = self.build()
            except SQLAlchemyError as exc:
                log.warning("fleet feed cannot read the registry: %s", exc)
            except Exception:  # one bad build must not end every wall's updates
                log.exception("fleet feed: building the picture failed")
            else:
                with self._cond:
                    self._apply(picture, at, alerts)
            with self._cond:
                if self._listeners:
                    idle_since = self._mono()
                elif self._mono() - idle_since > self.idle_s:
                    self._thread = None  # the next listener starts a new watcher
                    return
            time.sleep(max(0.05, self.poll_s - (self._mono() - started)))


def parse_event_id(value: str | None, epoch: str) -> int | None:
    """The version of a ``Last-Event-ID`` written by this feed, else None."""
    if not value or "-" not in value:
        return None
    ep, _, v = value.strip().partition("-")
    if ep != epoch or not v.isascii() or not v.isdigit() or len(v) > 18:
        return None
    return int(v)


def stream(
    feed: FleetFeed,
    last_event_id: str | None = None,
    *,
    heartbeat_s: float = 5.0,
    max_age_s: float = 300.0,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[str]:
    """The text of one SSE response."""
    started = last_sent = monotonic()
    version, picture, at = feed.current()
    resumed = parse_event_id(last_event_id, feed.epoch)
    delta = feed.since(resumed) if resumed is not None else None
    head = f"retry: {RETRY_MS}\n\n"
    if delta is None:
        yield head + sse("fleet", message(picture, list(picture.values()), [], full=True,
                                          at=at), f"{feed.epoch}-{version}")
    else:
        version, changed, removed, alerts = delta
        picture, at = feed.picture()
        yield head + sse("fleet", {**message(picture, changed, removed, full=False, at=at),
                                   "alerts": alerts}, f"{feed.epoch}-{version}")
    while monotonic() - started < max_age_s:
        wait = max(0.0, min(heartbeat_s - (monotonic() - last_sent),
                            max_age_s - (monotonic() - started)))
        if feed.wait_beyond(version, wait):
            found = feed.since(version)
            picture, at = feed.picture()
            if found is None:  # fell behind the history: start over with the whole picture
                version = feed.current()[0]
                event = {**message(picture, list(picture.values()), [], full=True, at=at),
                         "alerts": True}
            else:
                version, changed, removed, alerts = found
                event = {**message(picture, changed, removed, full=False, at=at),
                         "alerts": alerts}
            last_sent = monotonic()
            yield sse("fleet", event, f"{feed.epoch}-{version}")
            continue
        if monotonic() - last_sent >= heartbeat_s:
            last_sent = monotonic()
            yield sse("ping", {"at": feed.picture()[1]})
