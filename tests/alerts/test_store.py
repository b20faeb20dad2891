"""Alert state in a real SQLite registry: round trips, several workers, the outbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from hub.alerts import actions
from hub.alerts import store as st
from hub.alerts.codec import merge_alerts
from hub.alerts.engine import AlertEngine, evaluate
from hub.alerts.model import Alert, Observation, Silence, Subject
from hub.alerts.store import AlertStore
from hub.alerts.tables import AlertRow, DeliveryRow, NotificationRow
from hub.registry.db import Registry, open_registry
from tests.alerts.scenario import dev, rules, t

A, B = dev("dev-a"), dev("dev-b")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = open_registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    yield reg
    reg.close()


def obs(at: float, *items: tuple[Subject, str, bool]) -> list[Observation]:
    return [Observation(s, r, v, t(at)) for s, r, v in items]


def test_registry_schema_has_the_alert_tables(registry: Registry) -> None:
    names = set(inspect(registry.engine).get_table_names())
    assert {"alerts", "alert_trackers", "alert_events", "alert_silences",
            "alert_notifications", "alert_deliveries", "alert_locks", "devices"} <= names
    uniques = inspect(registry.engine).get_unique_constraints("alerts")
    assert any(set(u["column_names"]) == {"subject", "rule", "occurrence"} for u in uniques)


def test_state_round_trips_exactly(registry: Registry) -> None:
    store = AlertStore(registry)
    engine = AlertEngine(rules())
    for at, items in ((0, [(A, "hot", True), (B, "offline", True)]), (20, [(A, "hot", False)]),
                      (40, [(A, "hot", True)]), (100, []), (130, [])):
        store.save(engine.evaluate(obs(at, *items), t(at)), t(at))
    loaded = store.load(t(130))
    assert loaded.alerts == engine.state.alerts
    assert {k: v.durable() for k, v in loaded.trackers.items()} == {
        k: v.durable() for k, v in engine.state.trackers.items() if not v.idle}
    assert all(a.since.tzinfo is not None for a in loaded.alerts.values())


def test_interleaved_workers_store_one_alert_and_one_notification(registry: Registry) -> None:
    rs = rules()
    st1, st2 = AlertStore(registry, "w1"), AlertStore(registry, "w2")
    st1.save(evaluate(rs, st1.load(t(0)), obs(0, (A, "hot", True)), t(0)), t(0))
    # Both workers read the same state, then both evaluate and write the same step.
    s1, s2 = st1.load(t(60)), st2.load(t(60))
    r1, r2 = evaluate(rs, s1, [], t(60)), evaluate(rs, s2, [], t(61))
    assert len(r1.notifications) == len(r2.notifications) == 1
    fresh1 = st1.save(r1, t(60), channels=("mqtt",))
    fresh2 = st2.save(r2, t(61), channels=("mqtt",))
    assert len(fresh1) == 1 and fresh2 == []
    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(AlertRow)) == 1
        assert s.scalar(select(func.count()).select_from(NotificationRow)) == 1
        assert s.scalar(select(func.count()).select_from(DeliveryRow)) == 1


def test_concurrent_steps_never_duplicate(registry: Registry) -> None:
    rs = rules()
    errors: list[BaseException] = []
    told: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        store = AlertStore(registry, name)
        try:
            for i in range(40):
                at = i * 10
                active = (i // 10) % 2 == 0  # 100 s on, 100 s off
                _, fresh = store.step(rs, obs(at, (A, "hot", active), (B, "offline", True)),
                                      t(at))
                with lock:
                    told.extend(n.id for n in fresh)
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",), name=f"alert-w{i}")
               for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    assert len(told) == len(set(told))
    kinds = sorted(n.split(":", 1)[1] for n in told)
    # hot: fires at 60, resolves at 160, fires at 260, its 4th change at 300 makes it flap;
    # offline: fires at 60, escalates at 360.
    assert kinds == ["escalated:1", "firing", "firing", "firing", "flapping", "resolved"]


@pytest.mark.parametrize(("stored", "new", "status", "notified", "level", "severity"), [
    ("resolved", "firing", "resolved", {"firing", "resolved"}, 1, "critical"),
    ("firing", "acknowledged", "acknowledged", {"firing", "resolved"}, 1, "critical"),
    ("acknowledged", "firing", "acknowledged", {"firing", "resolved"}, 1, "critical"),
    ("pending", "firing", "firing", {"firing", "resolved"}, 1, "critical"),
])
def test_merge_never_moves_backwards(stored: str, new: str, status: str, notified: set[str],
                                     level: int, severity: str) -> None:
    base = Alert(subject=A, rule_id="hot", occurrence=1, status="firing", severity="warning",
                 desks=("ops",), since=t(0), fired_at=t(60))
    old = replace(base, status=stored, notified=frozenset({"resolved"}), escalation_level=1,  # type: ignore[arg-type]
                  severity="critical", resolved_at=t(100) if stored == "resolved" else None,
                  acked_by="budi" if stored == "acknowledged" else "")
    fresh = replace(base, status=new, notified=frozenset({"firing"}), desks=("ops", "lead"),  # type: ignore[arg-type]
                    acked_by="ani" if new == "acknowledged" else "")
    merged = merge_alerts(old, fresh)
    assert merged.status == status and merged.notified == notified
    assert merged.escalation_level == level and merged.severity == severity
    assert merged.desks == ("ops", "lead")
    assert (merged.resolved_at is not None) == (status == "resolved")
    if status == "acknowledged":
        assert merged.acked_by in ("budi", "ani")


def test_outbox_claims_leases_and_retries(registry: Registry) -> None:
    store = AlertStore(registry)
    engine = AlertEngine(rules())
    engine.evaluate(obs(0, (A, "hot", True), (B, "hot", True)), t(0))
    store.save(engine.evaluate([], t(60)), t(60), channels=("webhook:a", "mqtt"))
    with registry.session() as s:
        got = st.claim_deliveries(s, "webhook:a", "w1", t(61), lease_s=30)
        assert len(got) == 2 and {n.kind for n in got} == {"firing"}
        assert st.claim_deliveries(s, "webhook:a", "w2", t(62)) == []  # leased to w1
        assert len(st.claim_deliveries(s, "mqtt", "w2", t(62))) == 2  # other channel
        st.mark_delivered(s, got[0].id, "webhook:a", t(63))
        st.mark_failed(s, got[1].id, "webhook:a", t(63), "HTTP 500", retry_at=t(120))
    with registry.session() as s:
        assert st.claim_deliveries(s, "webhook:a", "w2", t(100)) == []  # not due yet
        again = st.claim_deliveries(s, "webhook:a", "w2", t(120))
        assert [n.id for n in again] == [got[1].id]
        st.mark_failed(s, got[1].id, "webhook:a", t(121), "HTTP 400", retry_at=None)
    with registry.session() as s:
        assert st.claim_deliveries(s, "webhook:a", "w3", t(1000)) == []
        rows = {r.notification_id: r for r in s.scalars(
            select(DeliveryRow).where(DeliveryRow.channel == "webhook:a"))}
        assert rows[got[0].id].status == "sent" and rows[got[0].id].attempts == 1
        assert rows[got[1].id].status == "failed" and rows[got[1].id].attempts == 2
        assert rows[got[1].id].last_error == "HTTP 400"


def test_lease_expiry_lets_another_worker_take_over(registry: Registry) -> None:
    store = AlertStore(registry)
    engine = AlertEngine(rules())
    engine.evaluate(obs(0, (A, "hot", True)), t(0))
    store.save(engine.evaluate([], t(60)), t(60), channels=("mqtt",))
    with registry.session() as s:
        assert len(st.claim_deliveries(s, "mqtt", "w1", t(61), lease_s=10)) == 1
        assert st.claim_deliveries(s, "mqtt", "w2", t(70)) == []
        assert len(st.claim_deliveries(s, "mqtt", "w2", t(71))) == 1  # w1 died


def test_silences_history_and_live_cursor(registry: Registry) -> None:
    store = AlertStore(registry)
    silence = Silence("s-1", (("rule", "hot"), ("kelurahan", "Beji*")), "ganti kipas",
                      "admin", t(0), t(500))
    store.add_silence(silence)
    with pytest.raises(ValueError, match="end after"):
        store.add_silence(replace(silence, id="s-2", ends_at=t(0)))
    assert store.load(t(10)).silences == (silence,)
    engine = AlertEngine(rules(), store.load(t(0)))
    engine.evaluate(obs(0, (A, "hot", True)), t(0))
    quiet = engine.evaluate([], t(60))
    assert quiet.notifications == ()
    assert quiet.alerts[0].suppressed_by == "silence:s-1"
    store.save(quiet, t(60))
    store.expire_silence("s-1", t(100))
    engine = AlertEngine(rules(), store.load(t(101)))
    assert engine.state.silences == ()
    told = engine.evaluate([], t(101))
    store.save(told, t(101))
    aid = told.notifications[0].alert_id
    acked = store.act(lambda state: actions.acknowledge(state, aid, "budi", "dicek", t(120)),
                      t(120))
    assert acked.alerts[0].status == "acknowledged"
    with registry.session() as s:
        assert [e.kind for e in st.history(s, aid)] == ["firing", "acknowledged"]
        first = st.notifications_after(s, 0)
        assert [n.kind for _, n in first] == ["firing"]
        assert st.notifications_after(s, first[-1][0]) == []
        alert = st.get_alert(s, aid)
        assert alert is not None and alert.acked_by == "budi"


def test_device_facts_from_the_registry(registry: Registry) -> None:
    from hub.registry.models import Device, Site

    with registry.session() as s:
        s.add(Site(id="pole-1", kecamatan="Beji", kelurahan="Kukusan"))
        s.flush()
        s.add_all([
            Device(id="dev-on", site_id="pole-1", presence="online", presence_at=t(0),
                   last_health_at=t(95), last_health={"uptime_s": 1.0, "temp_c": 81.0},
                   health_interval_s=10.0, created_at=t(0)),
            Device(id="dev-stale", site_id="pole-1", presence="online", presence_at=t(0),
                   last_health_at=t(50), health_interval_s=10.0, created_at=t(0)),
            Device(id="dev-gone", site_id="pole-1", presence="offline", created_at=t(0)),
            Device(id="dev-new", site_id="pole-1", created_at=t(0)),
        ])
    with registry.session() as s:
        facts = {f.device_id: f for f in st.load_device_facts(s, t(100))}
    assert {k: f.state for k, f in facts.items()} == {
        "dev-on": "online", "dev-stale": "stale", "dev-gone": "offline", "dev-new": "unknown"}
    assert facts["dev-on"].subject == Subject("device", "Beji", "Kukusan", device="dev-on")
    assert facts["dev-on"].health == {"uptime_s": 1.0, "temp_c": 81.0}
