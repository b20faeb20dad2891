"""hub.ingest.mqttlink against a real Mosquitto: the hub's own MQTT 5 connection.

Delivery with user properties, manual acks that stop redelivery, a persistent session that
redelivers what was not acked (and ignores acks of an older connection), the broker's
Receive Maximum for the hub's own publishes, and keepalive on an idle link."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.ingest.mqttlink import HubMqtt
from hub.ingest.mqttwire import Message
from hub.localservices import MosquittoProcess, wait_until
from hub.settings import HubSettings, load_settings

pytestmark = pytest.mark.integration


class Inbox:
    """What the link hands over, per generation."""

    def __init__(self) -> None:
        self.items: queue.Queue[tuple[int, Message]] = queue.Queue()

    def __call__(self, gen: int, messages: list[Message]) -> None:
        for m in messages:
            self.items.put((gen, m))

    def take(self, n: int, timeout: float = 10.0) -> list[tuple[int, Message]]:
        deadline = time.monotonic() + timeout
        return [self.items.get(timeout=max(0.01, deadline - time.monotonic()))
                for _ in range(n)]


def _settings(tmp_path: Path, port: int, **extra: object) -> HubSettings:
    return load_settings(env={}, overrides={
        "data_dir": str(tmp_path / "hub"), "mqtt_port": port, "mqtt_keepalive_s": 5,
        "influx_url": "http://127.0.0.1:9", **extra})


def _publisher(port: int) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-dev", protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def _send(c: mqtt.Client, topic: str, payload: bytes, **user: str) -> None:
    props = Properties(PacketTypes.PUBLISH)
    if user:
        props.UserProperty = list(user.items())
    c.publish(topic, payload, qos=1, properties=props).wait_for_publish(5)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoProcess]:
    # A small Receive Maximum for clients' publishes: the hub must queue its own.
    with MosquittoProcess(data_dir=tmp_path / "mosquitto",
                          extra_config=["max_inflight_messages 3"]) as b:
        yield b


def _link(tmp_path: Path, port: int, inbox: Inbox,
          subs: tuple[str, ...] = ("dcor/v1/+/health", "dcor/v1/+/snapshot/+")) -> HubMqtt:
    link = HubMqtt(_settings(tmp_path, port), list(subs), inbox, "hub-test")
    link.start()
    assert link.wait_connected(10)
    return link


def test_messages_arrive_with_properties_and_acks_stop_redelivery(tmp_path, broker):
    inbox = Inbox()
    link = _link(tmp_path, broker.port, inbox)
    pub = _publisher(broker.port)
    try:
        time.sleep(0.3)  # the SUBSCRIBE is on its way
        _send(pub, "dcor/v1/dev-1/health", b'{"seq":1}')
        _send(pub, "dcor/v1/dev-1/snapshot/cam1", b"\xff\xd8jpeg", id="s-1", seq="2")
        (g1, m1), (_g2, m2) = inbox.take(2)
        assert (m1.topic, m1.payload, m1.user_properties) == (
            "dcor/v1/dev-1/health", b'{"seq":1}', None)
        assert m2.user_properties == [("id", "s-1"), ("seq", "2")]
        assert m2.payload == b"\xff\xd8jpeg" and m1.packet_id and m2.packet_id
        link.ack_batch([(g1, m1.packet_id)])  # the second stays unacknowledged
        time.sleep(0.5)
    finally:
        link.stop()
    # The session persisted: only the unacknowledged message comes again, on a new
    # connection; an ack carrying the old generation is not sent on it.
    inbox2 = Inbox()
    link2 = _link(tmp_path, broker.port, inbox2)
    try:
        [(gen, again)] = inbox2.take(1)
        assert again.topic == "dcor/v1/dev-1/snapshot/cam1" and gen == 1
        link2.ack_batch([(gen + 1, again.packet_id)])  # stale generation: skipped
        with pytest.raises(queue.Empty):
            inbox2.take(1, timeout=0.5)
        link2.ack_batch([(gen, again.packet_id)])
        time.sleep(0.3)
    finally:
        link2.stop()
        pub.disconnect()
        pub.loop_stop()
    inbox3 = Inbox()
    link3 = _link(tmp_path, broker.port, inbox3)
    try:
        with pytest.raises(queue.Empty):
            inbox3.take(1, timeout=1.0)  # nothing left unacknowledged
    finally:
        link3.stop()


def test_the_hubs_publishes_respect_the_brokers_receive_maximum(tmp_path, broker):
    got: list[bytes] = []
    done = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-sub", protocol=mqtt.MQTTv5)

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.payload)
        if len(got) == 300:
            done.set()

    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("dcor/v1/+/ack", qos=1)
    sub.loop_start()
    link = _link(tmp_path, broker.port, Inbox())
    try:
        time.sleep(0.3)
        for i in range(300):  # a hundred times the broker's quota of 3 in flight
            assert link.publish(f"dcor/v1/dev-{i % 7}/ack", str(i).encode())
        assert done.wait(15), f"{len(got)} of 300 arrived"
        assert sorted(int(p) for p in got) == list(range(300))
    finally:
        link.stop()
        sub.disconnect()
        sub.loop_stop()


def test_an_idle_link_outlives_its_keepalive(tmp_path, broker):
    inbox = Inbox()
    link = _link(tmp_path, broker.port, inbox)
    try:
        gen = link.generation
        time.sleep(9)  # 1.8 x the 5 s keepalive: the broker would have cut a silent client
        assert link.connected() and link.generation == gen and link.reconnects == 0
    finally:
        link.stop()


def test_the_link_comes_back_after_the_broker_restarts(tmp_path):
    with MosquittoProcess(data_dir=tmp_path / "m", persistence=True) as b:
        inbox = Inbox()
        link = _link(tmp_path, b.port, inbox)
        try:
            gen = link.generation
            b.stop()
            wait_until(lambda: not link.connected(), 10, message="link notices")
            b.start()
            wait_until(link.connected, 15, message="link reconnects")
            assert link.generation > gen and link.reconnects == 1
            pub = _publisher(b.port)
            try:
                _send(pub, "dcor/v1/dev-2/health", b"{}")
                [(g, m)] = inbox.take(1)
                assert g == link.generation and m.topic == "dcor/v1/dev-2/health"
            finally:
                pub.disconnect()
                pub.loop_stop()
        finally:
            link.stop()


def test_after_a_freeze_the_link_leaves_the_dead_connection_unread(tmp_path, broker):
    """A stopped process (SIGSTOP, a suspended VM) wakes to a connection the broker dropped
    1.5 x keepalive ago: its buffered messages come again on the session, so the link must
    not hand them over twice, and the writer must not ack into the dead connection."""
    inbox = Inbox()
    link = _link(tmp_path, broker.port, inbox)
    pub = _publisher(broker.port)
    try:
        gen = link.generation
        assert link.live_generation() == gen
        conn = link._conn
        assert conn is not None
        frozen_at = time.monotonic() - 100  # as if the process had been stopped for 100 s
        conn.last_out = frozen_at
        assert link.live_generation() == 0  # the writer skips this generation's acks

        def reconnected() -> bool:
            # The network thread may have written (and so stamped last_out) between our
            # stamp and its check; a real freeze stops that thread too, so stamp again.
            if link._conn is conn:
                conn.last_out = frozen_at
            return link.generation > gen and link.connected()

        wait_until(reconnected, 10, message="link reconnects")
        assert link.live_generation() == link.generation
        _send(pub, "dcor/v1/dev-3/health", b"{}")
        [(g, m)] = inbox.take(1)
        assert g == link.generation and m.topic == "dcor/v1/dev-3/health"
    finally:
        link.stop()
        pub.disconnect()
        pub.loop_stop()
    assert link.live_generation() == 0
