from hub.ingest.recentacks import RecentAcks


def test_recent_acks_forget_beyond_the_horizon() -> None:
    r = RecentAcks(horizon_s=60)
    r.add("cam-001", [1, 2, 3], now=0.0)
    r.add("cam-001", [4], now=50.0)
    r.add("cam-002", [9], now=10.0)
    assert r.recent(55.0) == {"cam-001": {1, 2, 3, 4}, "cam-002": {9}}
    assert r.recent(65.0) == {"cam-001": {4}, "cam-002": {9}}
    assert r.recent(200.0) == {}


def test_recent_acks_are_bounded_per_device() -> None:
    r = RecentAcks(horizon_s=60, max_per_device=3)
    r.add("cam-001", range(1, 11), now=0.0)
    assert r.recent(1.0) == {"cam-001": {8, 9, 10}}
