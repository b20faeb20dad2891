"""edge_agent.outbox: durable seq, sending order, acks, and the byte cap with exact drop counts."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_agent.outbox import _ROW_OVERHEAD, Outbox, OutboxFull
from edge_agent.telemetry import Priority

TOPIC = "dcor/v1/cam-001/health"  # every row uses it, so row sizes are predictable
PAYLOAD = 100
ROW = PAYLOAD + len(TOPIC) + _ROW_OVERHEAD  # bytes one standard row counts against the cap


def body(n: int = PAYLOAD) -> Callable[[int], bytes]:
    """A build function making an ``n``-byte payload that names its seq."""
    def build(seq: int) -> bytes:
        return f"{seq:08d}".encode().ljust(n, b".")
    return build


class Clock:
    def __init__(self, ms: int = 1_700_000_000_000) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "agent" / "outbox.sqlite"  # a folder that does not exist yet


@pytest.fixture
def open_outbox(path: Path) -> Iterator[Callable[..., Outbox]]:
    opened: list[Outbox] = []

    def make(max_bytes: int = 10 * 1024 * 1024, clock: Callable[[], int] | None = None
             ) -> Outbox:
        ob = Outbox(path, max_bytes, **({"wall_ms": clock} if clock else {}))
        opened.append(ob)
        return ob

    yield make
    for ob in opened:
        with contextlib.suppress(sqlite3.ProgrammingError):  # already closed by the test
            ob.close()


def put(ob: Outbox, prio: Priority, n: int = PAYLOAD) -> int:
    return ob.put(TOPIC, body(n), prio)


def seqs(ob: Outbox, prio: Priority | None = None) -> list[int]:
    rows = ob.fetch(10_000, set())
    return [r.seq for r in rows if prio is None or r.priority == prio]


# --- seq --------------------------------------------------------------------------------


def test_seq_starts_at_one_and_is_monotonic_across_close_and_reopen(
        open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox()
    assert ob.next_seq == 1 and ob.last_seq() == 0
    assert [put(ob, Priority.HEALTH) for _ in range(3)] == [1, 2, 3]
    ob.ack([(1, 3)])  # an empty table must not reset the counter
    ob.close()
    ob = open_outbox()
    assert ob.next_seq == 4 and ob.last_seq() == 3
    assert put(ob, Priority.ALARM) == 4
    ob.close()
    ob = open_outbox()
    assert put(ob, Priority.CLIP) == 5


def test_build_receives_the_seq_it_is_stored_under(open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox()
    for _ in range(3):
        put(ob, Priority.DETECTIONS)
    for row in ob.fetch(10, set()):
        assert row.payload.startswith(f"{row.seq:08d}".encode())
        assert row.topic == TOPIC


def test_a_failing_build_consumes_no_seq_and_stores_nothing(
        open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox()
    assert put(ob, Priority.HEALTH) == 1

    def bad(seq: int) -> bytes:
        raise ValueError("invalid health payload")

    with pytest.raises(ValueError, match="invalid health payload"):
        ob.put(TOPIC, bad, Priority.HEALTH)
    assert (ob.depth, ob.size_bytes, ob.next_seq) == (1, ROW, 2)
    assert put(ob, Priority.HEALTH) == 2
    ob.close()
    ob = open_outbox()
    assert seqs(ob) == [1, 2] and ob.next_seq == 3


def test_props_round_trip(open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox()
    ob.put("dcor/v1/cam-001/snapshot/cam1", lambda s: b"\xff\xd8jpeg", Priority.SNAPSHOT,
           props=lambda seq: {"id": "snap-1", "seq": str(seq)})
    put(ob, Priority.HEALTH)
    rows = {r.seq: r for r in ob.fetch(10, set())}
    assert rows[1].props == {"id": "snap-1", "seq": "1"}
    assert rows[1].payload == b"\xff\xd8jpeg"
    assert rows[2].props is None
    # Properties count against the cap like the payload does.
    snap_size = (len(b"\xff\xd8jpeg") + len("dcor/v1/cam-001/snapshot/cam1")
                 + len(json.dumps(rows[1].props)) + _ROW_OVERHEAD)
    assert ob.size_bytes == snap_size + ROW


# --- fetch order --------------------------------------------------------------------------


@pytest.fixture
def mixed(open_outbox: Callable[..., Outbox]) -> Outbox:
    """seq 1..10 spread over the classes in an order unlike the sending order."""
    ob = open_outbox()
    for prio in [Priority.CLIP, Priority.HEALTH, Priority.SNAPSHOT, Priority.ALARM,
                 Priority.DETECTIONS, Priority.HEALTH, Priority.ALARM, Priority.CLIP,
                 Priority.DETECTIONS, Priority.HEALTH]:
        put(ob, prio)
    return ob


def test_fetch_orders_by_class_then_seq(mixed: Outbox) -> None:
    rows = mixed.fetch(100, set())
    assert [(r.priority, r.seq) for r in rows] == [
        (0, 4), (0, 7), (1, 2), (1, 6), (1, 10), (2, 5), (2, 9), (3, 3), (4, 1), (4, 8)]


@pytest.mark.parametrize(
    ("limit", "skip", "floors", "expected"),
    [
        (3, set(), None, [4, 7, 2]),
        (0, set(), None, []),
        (100, {4, 2, 10, 1}, None, [7, 6, 5, 9, 3, 8]),
        (3, {4, 7}, None, [2, 6, 10]),  # skipped rows do not count against the limit
        (4, {2, 6, 10}, None, [4, 7, 5, 9]),
        (100, set(), {0: 4, 1: 6}, [7, 10, 5, 9, 3, 1, 8]),
        (100, set(), {0: 99, 1: 99, 2: 99, 3: 99}, [1, 8]),
        (2, {1}, {0: 7, 1: 10, 2: 9, 3: 3}, [8]),
        (100, {3, 5}, {1: 2}, [4, 7, 6, 10, 9, 1, 8]),
    ],
)
def test_fetch_with_limit_skip_and_per_class_floors(
        mixed: Outbox, limit: int, skip: set[int], floors: dict[int, int] | None,
        expected: list[int]) -> None:
    assert [r.seq for r in mixed.fetch(limit, skip, floors)] == expected


def test_skipping_many_rows_of_one_class_still_fills_the_limit(
        open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox()
    for _ in range(30):
        put(ob, Priority.HEALTH, 10)
    assert [r.seq for r in ob.fetch(5, set(range(1, 26)))] == [26, 27, 28, 29, 30]


# --- ack ----------------------------------------------------------------------------------


def test_ack_ranges_delete_rows_and_update_depth_and_bytes(mixed: Outbox) -> None:
    assert (mixed.depth, mixed.size_bytes) == (10, 10 * ROW)
    assert mixed.ack([(1, 3), (7, 7), (9, 100)]) == 6
    assert (mixed.depth, mixed.size_bytes) == (4, 4 * ROW)
    assert sorted(seqs(mixed)) == [4, 5, 6, 8]
    assert mixed.ack([(1, 3), (7, 7)]) == 0  # redelivered ack: harmless
    assert mixed.ack([]) == 0
    assert mixed.ack([(6, 5)]) == 0  # an inverted range selects nothing
    assert (mixed.depth, mixed.size_bytes) == (4, 4 * ROW)


def test_ack_survives_reopen(mixed: Outbox, open_outbox: Callable[..., Outbox]) -> None:
    mixed.ack([(2, 9)])
    mixed.close()
    ob = open_outbox()
    assert sorted(seqs(ob)) == [1, 10]
    assert (ob.depth, ob.size_bytes) == (2, 2 * ROW)


# --- the cap ------------------------------------------------------------------------------


def test_rows_fit_exactly_up_to_the_cap(open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox(max_bytes=3 * ROW)
    for _ in range(3):
        put(ob, Priority.CLIP)
    assert (ob.depth, ob.size_bytes) == (3, 3 * ROW)
    assert all(n == 0 for n in ob.dropped().values())


def test_when_full_only_the_oldest_rows_of_the_lowest_class_are_dropped(
        open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox(max_bytes=8 * ROW)
    layout = [Priority.SNAPSHOT, Priority.CLIP, Priority.HEALTH, Priority.CLIP,
              Priority.ALARM, Priority.CLIP, Priority.SNAPSHOT, Priority.DETECTIONS]
    for prio in layout:  # seq 1..8, exactly full
        put(ob, prio)
    assert ob.size_bytes == 8 * ROW

    assert put(ob, Priority.HEALTH) == 9  # needs one row: the oldest clip (2) goes
    assert sorted(seqs(ob)) == [1, 3, 4, 5, 6, 7, 8, 9]
    assert put(ob, Priority.ALARM, 2 * PAYLOAD) == 10  # needs ~2 rows: clips 4 and 6 go
    assert sorted(seqs(ob)) == [1, 3, 5, 7, 8, 9, 10]
    assert put(ob, Priority.DETECTIONS) == 11  # clips are gone: the oldest snapshot (1)
    assert sorted(seqs(ob)) == [3, 5, 7, 8, 9, 10, 11]

    assert ob.dropped() == {"alarm": 0, "health": 0, "detections": 0, "snapshot": 1, "clip": 3}
    assert ob.size_bytes <= ob.max_bytes
    assert ob.size_bytes == sum(len(r.payload) + len(r.topic) + _ROW_OVERHEAD
                                for r in ob.fetch(100, set()))


def test_drop_counts_are_persisted_across_reopen(
        open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox(max_bytes=2 * ROW)
    put(ob, Priority.CLIP)
    put(ob, Priority.SNAPSHOT)
    put(ob, Priority.HEALTH)  # drops clip 1
    put(ob, Priority.HEALTH)  # drops snapshot 2
    with pytest.raises(OutboxFull):
        put(ob, Priority.CLIP)  # nothing at or below clip to drop: the new row goes
    expected = {"alarm": 0, "health": 0, "detections": 0, "snapshot": 1, "clip": 2}
    assert ob.dropped() == expected
    ob.close()
    ob = open_outbox(max_bytes=2 * ROW)
    assert ob.dropped() == expected
    assert ob.next_seq == 6
    assert sorted(seqs(ob)) == [3, 4]


def test_a_new_lowest_class_row_that_does_not_fit_is_itself_dropped(
        open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox(max_bytes=3 * ROW)
    for prio in (Priority.ALARM, Priority.HEALTH, Priority.DETECTIONS):
        put(ob, prio)
    with pytest.raises(OutboxFull, match="dropped seq 4"):
        put(ob, Priority.CLIP)
    assert sorted(seqs(ob)) == [1, 2, 3]
    assert (ob.depth, ob.size_bytes) == (3, 3 * ROW)
    assert ob.dropped()["clip"] == 1
    assert sum(ob.dropped().values()) == 1
    # The dropped row consumed its seq: the hub will see the gap, which is the real loss.
    assert ob.next_seq == 5
    # A higher class still gets in, at the cost of the lowest class present.
    assert put(ob, Priority.ALARM) == 5
    assert sorted(seqs(ob)) == [1, 2, 5]
    assert ob.dropped() == {"alarm": 0, "health": 0, "detections": 1, "snapshot": 0, "clip": 1}


def test_higher_class_rows_are_never_dropped_for_a_lower_class_row(
        open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox(max_bytes=4 * ROW)
    for prio in (Priority.ALARM, Priority.ALARM, Priority.HEALTH, Priority.CLIP):
        put(ob, prio)
    # A detections row may only take the clip; half a row short, it is dropped itself and the
    # clip it could not fully use stays (nothing is dropped for a row that is not stored).
    with pytest.raises(OutboxFull):
        put(ob, Priority.DETECTIONS, 2 * PAYLOAD)
    assert sorted(seqs(ob)) == [1, 2, 3, 4]
    assert ob.dropped() == {"alarm": 0, "health": 0, "detections": 1, "snapshot": 0, "clip": 0}
    # A row of the same size does fit by taking the clip.
    assert put(ob, Priority.DETECTIONS) == 6
    assert sorted(seqs(ob)) == [1, 2, 3, 6]
    assert ob.dropped()["clip"] == 1
    # Now only higher classes and its own class remain: the older detections row goes first.
    assert put(ob, Priority.DETECTIONS) == 7
    assert sorted(seqs(ob)) == [1, 2, 3, 7]
    with pytest.raises(OutboxFull):
        put(ob, Priority.SNAPSHOT)
    assert sorted(seqs(ob)) == [1, 2, 3, 7]
    assert ob.dropped() == {"alarm": 0, "health": 0, "detections": 2, "snapshot": 1, "clip": 1}


def test_alarms_displace_everything_below_them_but_not_each_other(
        open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox(max_bytes=3 * ROW)
    put(ob, Priority.HEALTH)
    put(ob, Priority.CLIP)
    put(ob, Priority.DETECTIONS)
    for expected in (4, 5, 6):
        assert put(ob, Priority.ALARM) == expected
    assert sorted(seqs(ob)) == [4, 5, 6]
    assert put(ob, Priority.ALARM) == 7  # full of alarms: the oldest alarm goes
    assert sorted(seqs(ob)) == [5, 6, 7]
    assert ob.dropped() == {"alarm": 1, "health": 1, "detections": 1, "snapshot": 0, "clip": 1}


def test_a_row_larger_than_the_whole_cap_is_dropped_and_drops_nothing_else(
        open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox(max_bytes=2 * ROW)
    put(ob, Priority.CLIP)
    with pytest.raises(OutboxFull):
        put(ob, Priority.ALARM, 3 * ROW)
    assert seqs(ob) == [1]
    assert ob.dropped()["alarm"] == 1 and ob.dropped()["clip"] == 0


def test_many_drops_are_counted_exactly(open_outbox: Callable[..., Outbox]) -> None:
    ob = open_outbox(max_bytes=10 * ROW)
    for _ in range(50):
        put(ob, Priority.SNAPSHOT)
    for _ in range(5):
        put(ob, Priority.HEALTH)
    # 55 rows into 10 slots: 45 snapshots dropped, oldest first.
    assert ob.dropped()["snapshot"] == 45
    assert seqs(ob, Priority.SNAPSHOT) == [46, 47, 48, 49, 50]
    assert seqs(ob, Priority.HEALTH) == [51, 52, 53, 54, 55]
    assert ob.depth == 10 and ob.size_bytes == 10 * ROW


# --- figures ------------------------------------------------------------------------------


def test_integrity_check_ok(mixed: Outbox) -> None:
    assert mixed.integrity_ok()


def test_oldest_age_with_an_injected_clock(open_outbox: Callable[..., Outbox]) -> None:
    clock = Clock()
    ob = open_outbox(clock=clock)
    assert ob.oldest_age_s() == 0.0  # empty
    put(ob, Priority.HEALTH)
    clock.ms += 1500
    put(ob, Priority.ALARM)
    clock.ms += 2000
    assert ob.oldest_age_s() == pytest.approx(3.5)
    ob.ack([(1, 1)])
    assert ob.oldest_age_s() == pytest.approx(2.0)
    clock.ms -= 10_000  # the wall clock stepped back (NTP): never a negative age
    assert ob.oldest_age_s() == 0.0
    created = [r.created_ms for r in ob.fetch(10, set())]
    assert created == [1_700_000_000_000 + 1500]
