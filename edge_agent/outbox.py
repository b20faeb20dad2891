"""The durable outbox: every telemetry message is on disk before it is sent.

SQLite in WAL mode with ``synchronous=FULL``: a row is fsynced when ``put`` returns, and it is
deleted only when the hub says it has stored that ``seq`` (``ack``), so a power cut loses
nothing that was put. The per-device ``seq`` counter lives in the same file and advances in the
same transaction as the row, so it stays monotonic across restarts and crashes.

The outbox is bounded in bytes. When a new row does not fit, rows of the lowest priority class
(the highest ``Priority`` number) that is not above the new row's class are dropped, oldest
first; if that is not enough the new row itself is dropped. Every drop is counted per class,
persistently, and the counts travel in the health payload.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.telemetry import Priority

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    priority INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    props TEXT,
    created_ms INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_class ON outbox (priority, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_ROW_OVERHEAD = 64  # bytes of bookkeeping counted per row, so tiny rows are not free


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    priority: int
    topic: str
    payload: bytes
    props: dict[str, str] | None
    created_ms: int


class OutboxFull(RuntimeError):
    """The new row did not fit even after dropping everything of its class and below."""


class Outbox:
    def __init__(self, path: Path, max_bytes: int,
                 wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self._wall_ms = wall_ms
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._bytes, self._count = self._db.execute(
            "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM outbox").fetchone()
        self._next_seq = self._meta("next_seq", 1)
        self._dropped = {p: self._meta(f"dropped_{p.name.lower()}", 0) for p in Priority}

    # --- producing ------------------------------------------------------------------------

    def put(self, topic: str, build: Callable[[int], bytes], priority: Priority,
            props: Callable[[int], dict[str, str]] | None = None) -> int:
        """Assign the next ``seq``, build the payload (and user properties) with it, store it.

        ``build`` may raise (invalid payload): then nothing is stored and no seq is consumed.
        Returns the seq, or raises OutboxFull when the row was dropped for lack of space.
        """
        with self._lock:
            seq = self._next_seq
            payload = build(seq)
            props_json = json.dumps(props(seq)) if props else None
            size = len(payload) + len(topic) + len(props_json or "") + _ROW_OVERHEAD
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                fits = self._make_room(cur, size, priority)
                self._set_meta(cur, "next_seq", seq + 1)
                if fits:
                    cur.execute(
                        "INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (seq, int(priority), topic, payload, props_json, self._wall_ms(), size),
                    )
                else:
                    self._count_drop(cur, priority, 1)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                self._reload_counters()
                raise
            self._next_seq = seq + 1
            if not fits:
                raise OutboxFull(f"outbox full ({self.max_bytes} bytes): dropped seq {seq}")
            self._bytes += size
            self._count += 1
            return seq

    def _make_room(self, cur: sqlite3.Cursor, size: int, priority: Priority) -> bool:
        if size > self.max_bytes:
            return False
        need = self._bytes + size - self.max_bytes
        if need <= 0:
            return True
        victims: list[tuple[int, int, int]] = []
        freed = 0
        for seq, prio, rsize in cur.execute(
            "SELECT seq, priority, size FROM outbox WHERE priority >= ? "
            "ORDER BY priority DESC, seq ASC", (int(priority),)
        ):
            victims.append((seq, prio, rsize))
            freed += rsize
            if freed >= need:
                break
        if freed < need:
            return False
        for seq, prio, rsize in victims:
            cur.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            self._count_drop(cur, Priority(prio), 1)
            self._bytes -= rsize
            self._count -= 1
        return True

    def _count_drop(self, cur: sqlite3.Cursor, priority: Priority, n: int) -> None:
        self._dropped[priority] += n
        self._set_meta(cur, f"dropped_{priority.name.lower()}", self._dropped[priority])

    # --- consuming ------------------------------------------------------------------------

    def fetch(self, limit: int, skip: set[int], min_seq_by_class: dict[int, int] | None = None
              ) -> list[Row]:
        """Up to ``limit`` rows in sending order (class, then seq), leaving out ``skip``.

        ``min_seq_by_class`` lets the sender resume each class after what it already sent.
        """
        out: list[Row] = []
        floors = min_seq_by_class or {}
        with self._lock:
            for prio in Priority:
                if len(out) >= limit:
                    break
                cur = self._db.execute(
                    "SELECT seq, priority, topic, payload, props, created_ms FROM outbox "
                    "WHERE priority = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (int(prio), floors.get(int(prio), 0), limit - len(out) + len(skip)),
                )
                for seq, p, topic, payload, props, created in cur:
                    if seq in skip:
                        continue
                    out.append(Row(seq, p, topic, bytes(payload),
                                   json.loads(props) if props else None, created))
                    if len(out) >= limit:
                        break
        return out

    def ack(self, ranges: Iterable[tuple[int, int]]) -> int:
        """Delete the rows the hub has stored (inclusive seq ranges). Returns rows deleted."""
        deleted = 0
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for lo, hi in ranges:
                    row = cur.execute(
                        "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM outbox "
                        "WHERE seq BETWEEN ? AND ?", (lo, hi)).fetchone()
                    cur.execute("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (lo, hi))
                    self._bytes -= row[0]
                    self._count -= row[1]
                    deleted += row[1]
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                self._reload_counters()
                raise
        return deleted

    # --- figures --------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return int(self._count)

    @property
    def size_bytes(self) -> int:
        return int(self._bytes)

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def last_seq(self) -> int:
        return self._next_seq - 1

    def dropped(self) -> dict[str, int]:
        return {p.name.lower(): n for p, n in self._dropped.items()}

    def oldest_age_s(self) -> float:
        with self._lock:
            row = self._db.execute("SELECT MIN(created_ms) FROM outbox").fetchone()
        if row[0] is None:
            return 0.0
        return max(0.0, (self._wall_ms() - row[0]) / 1000.0)

    def integrity_ok(self) -> bool:
        with self._lock:
            return bool(self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- internals ------------------------------------------------------------------------

    def _meta(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else default

    def _set_meta(self, cur: sqlite3.Cursor, key: str, value: int) -> None:
        cur.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def _reload_counters(self) -> None:
        self._bytes, self._count = self._db.execute(
            "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM outbox").fetchone()
        self._next_seq = self._meta("next_seq", 1)
        self._dropped = {p: self._meta(f"dropped_{p.name.lower()}", 0) for p in Priority}
