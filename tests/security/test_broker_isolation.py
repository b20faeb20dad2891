"""Real Mosquitto with dynamic security and TLS: each box can touch only its own topics;
anonymous clients and wrong passwords are refused; a revoked box is cut off at once."""

from __future__ import annotations

import time
import uuid

import pytest

from dcor_wire import topics
from hub.localservices import wait_until
from tests.security.conftest import HUB_PW
from tests.security.mqttkit import Probe

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 0x87


def _ids() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"iso-a-{tag}", f"iso-b-{tag}"


@pytest.fixture
def two_boxes(secure_broker, broker_admin, pki_files):
    a, b = _ids()
    broker_admin.create_device(a, "password-of-a-123")
    broker_admin.create_device(b, "password-of-b-123")
    probes = []

    def connect(user, pw):
        p = Probe(secure_broker.tls_port, user, pw, ca=pki_files.ca, client_id=user)
        probes.append(p)
        return p

    yield a, b, connect
    for p in probes:
        p.close()
    broker_admin.delete_device(a)
    broker_admin.delete_device(b)


def test_a_box_cannot_write_or_read_another_boxs_topics(secure_broker, two_boxes):
    a, b, connect = two_boxes
    hub = Probe(secure_broker.port, "dcor-hub", HUB_PW)
    try:
        assert hub.subscribe(f"{topics.ROOT}/#") < 0x80
        box_a = connect(a, "password-of-a-123")
        assert box_a.accepted
        # Under B: every leaf B publishes, refused with a reason code.
        for t in [*topics.agent_publish_topics(b)]:
            t = t.replace("+", "cam1")
            assert box_a.publish(t, retain=True) == NOT_AUTHORIZED, t
        # B's subscriptions, the whole tree, the broker's own topics, and the control topic.
        for f in [*topics.agent_subscriptions(b), "#", "$SYS/#", f"{topics.ROOT}/+/ack",
                  "$CONTROL/dynamic-security/#", f"{topics.ROOT}/{b}/#"]:
            assert box_a.subscribe(f) == NOT_AUTHORIZED, f
        # A box cannot forge what only the hub sends, even to itself.
        assert box_a.publish(topics.device_topic(a, topics.ACK)) == NOT_AUTHORIZED
        assert box_a.publish(topics.device_topic(a, topics.CONFIG_DESIRED)) == NOT_AUTHORIZED
        # Its own topics work (0x10: accepted, no subscriber is not needed here).
        assert box_a.publish(topics.device_topic(a, topics.HEALTH)) < 0x80
        for f in topics.agent_subscriptions(a):
            assert box_a.subscribe(f) < 0x80
        time.sleep(0.3)
        under_b = [m.topic for m in hub.messages if m.topic.startswith(f"{topics.ROOT}/{b}/")]
        assert under_b == []  # nothing reached the hub (or was retained) under B
        assert [m.topic for m in hub.messages] == [topics.device_topic(a, topics.HEALTH)]
    finally:
        hub.close()


def test_anonymous_and_wrong_passwords_are_refused(secure_broker, two_boxes, pki_files):
    a, _b, _connect = two_boxes
    for port, ca in ((secure_broker.port, None), (secure_broker.tls_port, pki_files.ca)):
        anon = Probe(port, None, None, ca=ca)
        wrong = Probe(port, a, "not-the-password", ca=ca)
        other = Probe(port, a, "password-of-b-123", ca=ca)
        try:
            for p in (anon, wrong, other):
                assert p.connack is not None and p.connack.is_failure, p.connack
        finally:
            for p in (anon, wrong, other):
                p.close()


def test_a_revoked_box_is_cut_off_within_60_s_and_refused_after(secure_broker, broker_admin,
                                                                two_boxes):
    a, b, connect = two_boxes
    box_a = connect(a, "password-of-a-123")
    box_b = connect(b, "password-of-b-123")
    assert box_a.accepted and box_b.accepted
    started = time.monotonic()
    broker_admin.delete_device(a)
    wait_until(lambda: box_a.disconnected is not None, 60, message="revoked box cut off")
    cut_off_s = box_a.disconnected_at - started
    print(f"revoked box disconnected after {cut_off_s * 1000:.0f} ms")
    assert cut_off_s < 60
    again = connect(a, "password-of-a-123")
    assert again.connack.is_failure
    # The other box is untouched.
    assert box_b.disconnected is None
    assert box_b.publish(topics.device_topic(b, topics.HEALTH)) < 0x80
