"""Deliveries through the registry outbox: webhooks on loopback (once, retried after a
failure, given up, shared by workers), the sweep, and MQTT against a real broker."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from hub.alerts import actions
from hub.alerts.delivery import (
    DeliveryWorker,
    MqttChannel,
    WebhookChannel,
    ensure_deliveries,
    start_cursor,
)
from hub.alerts.model import Observation
from hub.alerts.mqttout import AlertPublisher
from hub.alerts.notify import WebhookConfig, alert_topic
from hub.alerts.store import AlertStore
from hub.alerts.tables import DeliveryRow
from hub.localservices import MosquittoProcess, free_port, wait_until
from hub.registry.db import Registry, open_registry
from hub.settings import load_settings
from tests.alerts.receiver import SECRET, WebhookReceiver
from tests.alerts.scenario import dev, rules, t

CHANNEL = "webhook:test"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = open_registry(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    yield reg
    reg.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    srv = WebhookReceiver().start()
    yield srv
    srv.close()


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def fire_hot(registry: Registry, devices: int = 1, channels: tuple[str, ...] = (CHANNEL,)
             ) -> list[str]:
    """Make ``devices`` 'hot' alerts fire; returns the notification ids stored."""
    store = AlertStore(registry)
    subjects = [dev(f"dev-{i}") for i in range(devices)]
    store.step(rules(), [Observation(s, "hot", True, t(0), value=90.0) for s in subjects], t(0))
    _, fresh = store.step(rules(), [], t(60), channels)
    return [n.id for n in fresh]


def channel(url: str, **kw: Any) -> WebhookChannel:
    config = WebhookConfig(name="test", url=url, secret_env="UNUSED", timeout_s=2, **kw)
    return WebhookChannel(config, SECRET, jitter=lambda: 0.0)


def worker(registry: Registry, ch: WebhookChannel | MqttChannel, clock: Clock,
           name: str = "w1") -> DeliveryWorker:
    return DeliveryWorker(registry, ch, name, rules, now=clock)


def rows(registry: Registry) -> list[tuple[str, str, int]]:
    with registry.session() as s:
        return [(r.notification_id, r.status, r.attempts)
                for r in s.scalars(select(DeliveryRow).order_by(DeliveryRow.id))]


def test_each_notification_is_delivered_once_and_signed(
        registry: Registry, receiver: WebhookReceiver) -> None:
    [nid] = fire_hot(registry)
    w = worker(registry, channel(receiver.url), Clock(t(60)))
    assert w.run_once() == 1
    assert w.run_once() == 0
    [got] = receiver.accepted()
    assert got.delivery == nid and got.signed
    assert got.body["kind"] == "firing" and got.body["rule"] == "hot"
    assert got.body["text"]["id"].startswith("Peringatan: Suhu perangkat tinggi")
    assert rows(registry) == [(nid, "sent", 1)]


def test_a_failed_attempt_is_retried_through_the_table(
        registry: Registry, receiver: WebhookReceiver) -> None:
    receiver.fail_first = True
    [nid] = fire_hot(registry)
    clock = Clock(t(60))
    w = worker(registry, channel(receiver.url, base_delay_s=0.5), clock)
    assert w.run_once() == 1
    assert rows(registry) == [(nid, "pending", 1)]
    assert w.run_once() == 0  # not due yet: the retry waits 0.25 s (jitter 0)
    clock.at += timedelta(seconds=0.3)
    # A restarted process picks the retry up just as well.
    again = worker(registry, channel(receiver.url, base_delay_s=0.5), clock, name="w2")
    assert again.run_once() == 1
    assert receiver.attempts() == {nid: 2}
    assert [r.delivery for r in receiver.accepted()] == [nid]
    assert rows(registry) == [(nid, "sent", 2)]
    assert w.counters.failed_attempts == 1 and again.counters.sent == 1


def test_gives_up_after_the_last_attempt(registry: Registry) -> None:
    [nid] = fire_hot(registry)
    clock = Clock(t(60))
    w = worker(registry, channel(f"http://127.0.0.1:{free_port()}/", attempts=2), clock)
    assert w.run_once() == 1
    clock.at += timedelta(seconds=5)
    assert w.run_once() == 1
    assert rows(registry) == [(nid, "failed", 2)]
    clock.at += timedelta(seconds=60)
    assert w.run_once() == 0 and w.counters.given_up == 1


def test_other_desks_receivers_skip_it(registry: Registry, receiver: WebhookReceiver) -> None:
    [nid] = fire_hot(registry)  # desk ops
    w = worker(registry, channel(receiver.url, desks=["dishub"]), Clock(t(60)))
    assert w.run_once() == 1
    assert receiver.received == [] and rows(registry) == [(nid, "skipped", 0)]


def test_two_workers_never_send_one_row_twice(
        registry: Registry, receiver: WebhookReceiver) -> None:
    ids = fire_hot(registry, devices=12)
    assert len(ids) == 12
    workers = [DeliveryWorker(registry, channel(receiver.url), f"w{i}", rules, batch=3,
                              now=Clock(t(60))) for i in range(2)]
    barrier = threading.Barrier(2)

    def drain(w: DeliveryWorker) -> None:
        barrier.wait()
        while w.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    delivered = [r.delivery for r in receiver.accepted()]
    assert sorted(delivered) == sorted(ids)  # each once, none lost
    assert sum(w.counters.sent for w in workers) == 12


def test_sweep_adds_rows_for_notifications_stored_without_them(registry: Registry) -> None:
    [firing] = fire_hot(registry, channels=())
    store = AlertStore(registry, "web")
    alert_id = firing.split(":")[0]
    store.act(functools.partial(actions.resolve_alert, rules(), alert_id=alert_id, who="ani",
                                note="fixed", now=t(90)), t(90))
    with registry.session() as s:
        cursor = start_cursor(s, t(100), backfill_s=3600)
        assert cursor == 0
        cursor = ensure_deliveries(s, ("mqtt", CHANNEL), cursor, t(100))
    with registry.session() as s:
        assert ensure_deliveries(s, ("mqtt", CHANNEL), 0, t(100)) == cursor  # no doubles
        assert start_cursor(s, t(100) + timedelta(hours=2)) == cursor  # nothing recent
    resolved = f"{alert_id}:resolved"
    assert sorted(rows_with_channel(registry)) == sorted([
        (firing, "mqtt"), (firing, CHANNEL), (resolved, "mqtt"), (resolved, CHANNEL)])


def rows_with_channel(registry: Registry) -> list[tuple[str, str]]:
    with registry.session() as s:
        return [(r.notification_id, r.channel) for r in s.scalars(select(DeliveryRow))]


@pytest.mark.integration
def test_mqtt_channel_publishes_confirmed_messages(
        registry: Registry, mosquitto: MosquittoProcess) -> None:
    [nid] = fire_hot(registry, channels=("mqtt",))
    got: list[tuple[str, dict[str, Any]]] = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = lambda _c, _u, m: got.append((m.topic, json.loads(m.payload)))
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect("127.0.0.1", mosquitto.port)
    sub.loop_start()
    settings = load_settings(env={}, overrides={"mqtt_port": mosquitto.port})
    publisher = AlertPublisher(settings, f"test-alerts-{nid[:8]}")
    ch = MqttChannel(publisher, timeout_s=3)
    clock = Clock(t(60))
    w = worker(registry, ch, clock)
    try:
        assert w.run_once() == 1  # not connected yet: a retryable failure
        assert rows(registry) == [(nid, "pending", 1)]
        publisher.start()
        assert publisher.wait_connected(10)
        sub.subscribe(alert_topic("ops"), qos=1)
        assert subscribed.wait(5)
        clock.at += timedelta(seconds=5)
        assert w.run_once() == 1
        assert rows(registry) == [(nid, "sent", 2)]
        wait_until(lambda: got, timeout=5, message="alert message")
        topic, body = got[0]
        assert topic == "dcor/v1/_hub/alerts/ops" and body["id"] == nid
    finally:
        w.stop()  # closes the channel: the publisher disconnects
        sub.loop_stop()
        sub.disconnect()
