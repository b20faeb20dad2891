"""Table tests of the pure parts: link shaping, the oracle, duplicate counting, the clock
window and the uplink's in-flight budget."""

from __future__ import annotations

import json

import pytest

from bench.faultshape import DeliveryClock, TokenBucket
from bench.oracle import DeviceLedger, judge, parse_ledger, reconnect_share
from edge_agent.pacing import LinkPacer
from hub.ingest.clockwindow import AHEAD, BEHIND, ClockWindow, QuarantineStamps
from hub.ingest.dedup import DuplicateCounter, SeqRanges

NOW_MS = 1_750_000_000_000
DAY_MS = 86_400_000


@pytest.mark.parametrize(("rate", "sizes", "gaps", "waits"), [
    (0.0, [4096, 4096], [0.0, 0.0], [0.0, 0.0]),           # no cap
    (1000.0, [250, 500], [0.0, 0.0], [0.0, 0.5]),          # burst of 250 B, then debt
    (1000.0, [1000, 1000], [0.0, 2.0], [0.75, 0.75]),       # a pause pays the debt back
    (2048.0, [512] * 4, [0.0] * 4, [0.0, 0.25, 0.5, 0.75]),  # 2 KB/s, 512 B chunks
])
def test_token_bucket(rate: float, sizes: list[int], gaps: list[float],
                      waits: list[float]) -> None:
    b = TokenBucket(rate, 0.0)
    b.tokens = rate * b.burst_s
    now = 0.0
    for size, gap, want in zip(sizes, gaps, waits, strict=True):
        now += gap
        assert b.take(size, now) == pytest.approx(want, abs=1e-9)


def test_delivery_keeps_order_under_jitter() -> None:
    c = DeliveryClock()
    assert c.due(0.0, 2.0) == 2.0
    assert c.due(0.1, 1.0) == 2.0  # would overtake the first chunk: waits for it
    assert c.due(5.0, 0.5) == 5.5


def test_ledger_parse_skips_torn_lines() -> None:
    led = parse_ledger(["a-1 b1 1 2", "a-1 b1 2 0", "a-1 b1 R 2", "a-1 b2 3", "x"])
    assert led["a-1"].seqs == {1: 2, 2: 0}
    assert led["a-1"].refused == 1
    assert led["a-1"].boots == {"b1"}


def _ledger(classes: dict[int, int], refused: int = 0) -> DeviceLedger:
    return DeviceLedger(seqs=dict(classes), refused=refused, boots={"b"})


@pytest.mark.parametrize(("classes", "stored", "dropped", "refused", "lost", "exact"), [
    ({1: 2, 2: 2, 3: 2}, [1, 2, 3], 0, 0, 0, True),
    ({1: 2, 2: 2, 3: 2}, [1, 3], 0, 0, 1, False),            # a hole nobody accounts for
    ({1: 2, 2: 2, 3: 0, 4: 2}, [3, 4], 2, 0, 0, True),       # oldest two readings evicted
    ({1: 2, 2: 2, 3: 0, 4: 2}, [1, 3, 4], 2, 1, 0, True),    # one refused new row, one evicted
    ({1: 2, 2: 2, 3: 2, 4: 2}, [2, 3, 4], 3, 0, 0, True),    # two evicted rows were stored
    ({1: 2, 2: 2, 3: 2, 4: 2}, [1, 2, 3], 70, 0, 0, False),  # far more counted than missing
    ({1: 0, 2: 2, 3: 2}, [2, 3], 1, 0, 0, False),            # an alarm went while readings stayed
])
def test_judge(classes: dict[int, int], stored: list[int], dropped: int, refused: int,
               lost: int, exact: bool) -> None:
    v = judge("d", _ledger(classes, refused), stored, dropped)
    assert (v.lost, v.drops_exact) == (lost, exact)


def test_judge_counts_duplicate_points_and_refused_lines() -> None:
    v = judge("d", _ledger({1: 1, 2: 1, 3: 1}), [1, 1, 3], 0, refused_by_influx=[2])
    assert v.duplicate_points == 1
    assert v.lost == 0


def test_reconnect_share_ignores_first_connections() -> None:
    connects = [(10.0, "a"), (10.2, "b"), (20.1, "a"), (20.9, "b"), (25.0, "a")]
    assert reconnect_share(connects, fleet=4) == (3, 0.5)
    assert reconnect_share([], fleet=4) == (0, 0.0)


def test_seq_ranges_merge_and_report_duplicates() -> None:
    r = SeqRanges()
    assert [r.add(s) for s in (5, 7, 6, 6, 1, 2, 9)] == [True, True, True, False, True, True,
                                                           True]
    assert list(zip(r.starts, r.ends, strict=True)) == [(1, 2), (5, 7), (9, 9)]
    r.squeeze(2)
    assert list(zip(r.starts, r.ends, strict=True)) == [(1, 7), (9, 9)]


def test_duplicate_counter_per_device() -> None:
    d = DuplicateCounter(max_ranges=4)
    assert not d.is_duplicate("a", 1)
    assert not d.is_duplicate("b", 1)
    assert d.is_duplicate("a", 1)
    for s in range(3, 40, 2):  # many gaps: memory stays at max_ranges
        d.is_duplicate("a", s)
    assert len(d._seen["a"]) <= 4


@pytest.mark.parametrize(("ts", "verdict"), [
    (NOW_MS, ""),
    (NOW_MS - 5 * DAY_MS, ""),            # an outbox replaying an outage: fine
    (NOW_MS + 5 * 60_000, ""),            # a few minutes fast: NTP will fix it
    (NOW_MS + 2 * DAY_MS, AHEAD),
    (DAY_MS, BEHIND),                     # 1970
    (NOW_MS - 100 * DAY_MS, BEHIND),
])
def test_clock_window(ts: int, verdict: str) -> None:
    assert ClockWindow().verdict(ts, NOW_MS) == verdict


def test_quarantine_stamps_never_collide() -> None:
    q = QuarantineStamps()
    assert [q.stamp("a", 100), q.stamp("a", 100), q.stamp("b", 100), q.stamp("a", 50)] == [
        100, 101, 100, 102]


def test_pacer_settles_near_link_rate_times_rtt() -> None:
    p = LinkPacer(target_queue_s=1.0)
    now = 0.0
    for i in range(200):  # a 2 KB/s link, 250-byte messages, 0.4 s base round trip
        now += 250 / 2048
        p.on_ack(250, 0.4 if i % 10 == 0 else 0.9, now)
    assert 2048 * 1.2 <= p.budget(now) <= 2048 * 1.6


def test_pacer_grows_on_a_fast_link_and_keeps_a_floor() -> None:
    p = LinkPacer()
    now = 0.0
    for _ in range(1000):
        now += 0.001
        p.on_ack(1000, 0.002, now)
    assert p.budget(now) >= 500_000
    idle = LinkPacer()
    idle.on_ack(100, 0.01, 0.0)
    idle.on_ack(100, 0.01, 1.9)
    assert idle.budget(2.0) == idle.min_bytes


def test_validator_quarantines_out_of_window_points() -> None:
    from dcor_wire import payloads
    from hub.ingest.validate import Accepted, SiteTags, Validator

    val = Validator({"cam-001": SiteTags("Beji", "Kemiri Muka")}.get, wall_ms=lambda: NOW_MS)
    ahead = payloads.encode(payloads.Health(ts=NOW_MS + 2 * DAY_MS, seq=7, uptime_s=1.0))
    r1 = val.check("dcor/v1/cam-001/health", ahead)
    r2 = val.check("dcor/v1/cam-001/health", ahead)
    assert isinstance(r1, Accepted) and isinstance(r2, Accepted)
    assert (r1.quarantine, r1.seq) == (AHEAD, 7)
    (ln,) = r1.lines
    assert ln.startswith("quarantine,device=cam-001,") and "kind=health" in ln
    assert "reason=clock_ahead" in ln and f"device_ts={NOW_MS + 2 * DAY_MS}i" in ln
    assert ln.endswith(f" {NOW_MS}") and r2.lines[0].endswith(f" {NOW_MS + 1}")
    good = val.check("dcor/v1/cam-001/health",
                     payloads.encode(payloads.Health(ts=NOW_MS - 1000, seq=8, uptime_s=1.0)))
    assert isinstance(good, Accepted) and not good.quarantine
    assert good.lines[0].startswith("health,")


def test_ingest_counters_continue_after_a_restart() -> None:
    from hub.ingest.stats import IngestStats

    s = IngestStats()
    s.restore({"received": 10, "stored": 9, "spool_depth": 4, "mqtt_connected": True,
               "rejected_by_reason": {"schema": 1}, "quarantined_by_reason": {BEHIND: 2}})
    s.inc("received")
    s.quarantine(BEHIND)
    snap = s.snapshot()
    assert (snap["received"], snap["stored"], snap["quarantined"]) == (11, 9, 1)
    assert "spool_depth" not in snap and "mqtt_connected" not in snap
    assert snap["rejected_by_reason"] == {"schema": 1}
    assert snap["quarantined_by_reason"] == {BEHIND: 3}


def test_fault_report_table_from_a_run() -> None:
    from bench.faultreport import summary_of, table

    result = {"scenario": "hub_sigstop", "fault_s": 120.0, "wall_s": 150.2, "produced": 1000,
              "lost": 0, "duplicates": 5, "reconnects": 0, "max_reconnect_share_per_s": 0.0,
              "rss_max_mb": {"hub": 80.1, "agent_host": 55.0}, "rss_growth": {"hub": 1.02},
              "hub": {"spooled_batches": 3}, "checks": {"no_loss": True, "drained": False},
              "ok": False}
    summary = {"length": "compressed", "scenarios": 1, "ok": False, "lost": 0,
               "duplicates_ratio": 0.005, "crashes": 0, "max_reconnect_share_per_s": 0.0,
               "results": [result]}
    text = "[note] progress\n" + json.dumps(summary) + "\n"
    out = table(summary_of(text))
    assert "| hub_sigstop | 120.0 | 150.2 | 1000 | 0 | 0 | 5 | 0.50 |" in out
    assert "80.1 (1.02)" in out and "spooled_batches 3" in out and "failed: drained" in out
