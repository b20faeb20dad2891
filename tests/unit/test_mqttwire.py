"""hub.ingest.mqttwire: MQTT 5 packets encoded and split from byte buffers (pure)."""

from __future__ import annotations

import pytest

from hub.ingest import mqttwire as w
from hub.ingest.mqttwire import Message, Packet, ProtocolError


def _publish_packet(topic: str, payload: bytes, pid: int | None, props: bytes = b"",
                    first: int = 0x32) -> bytes:
    body = w._str(topic) + (pid.to_bytes(2, "big") if pid is not None else b"")
    body += w.varint(len(props)) + props + payload
    return bytes([first]) + w.varint(len(body)) + body


def _user_property(k: str, v: str) -> bytes:
    return bytes([w.USER_PROPERTY]) + w._str(k) + w._str(v)


@pytest.mark.parametrize("n", [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152,
                               w.MAX_REMAINING_LENGTH])
def test_varint_round_trip(n: int) -> None:
    encoded = w.varint(n)
    assert len(encoded) == 1 + (n > 127) + (n > 16_383) + (n > 2_097_151)
    assert w._read_varint(encoded, 0) == (n, len(encoded))


def test_varint_refuses_what_does_not_fit() -> None:
    with pytest.raises(ValueError):
        w.varint(w.MAX_REMAINING_LENGTH + 1)
    with pytest.raises(ValueError):
        w.varint(-1)


def test_our_publish_splits_back_into_the_message() -> None:
    data = w.publish("dcor/v1/dev-1/ack", b'{"v":1}', 513, retain=True)
    packets, pos = w.split(data)
    assert pos == len(data)
    assert packets == [Message("dcor/v1/dev-1/ack", b'{"v":1}', 513, None, True)]


def test_many_packets_and_an_incomplete_tail() -> None:
    one = _publish_packet("dcor/v1/a/health", b"x" * 200, 7)  # two-byte remaining length
    two = _publish_packet("dcor/v1/b/health", b"{}", 8)
    data = one + two + w.PINGREQ + two[:5]
    packets, pos = w.split(data)
    assert [p.packet_id for p in packets if isinstance(p, Message)] == [7, 8]
    assert isinstance(packets[2], Packet) and packets[2].kind == w.PINGREQ_T
    assert pos == len(data) - 5  # the caller keeps the five bytes for the next read
    rest, end = w.split(data[pos:] + two[5:])
    assert [m.topic for m in rest if isinstance(m, Message)] == ["dcor/v1/b/health"]
    assert end == len(two)


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_a_packet_cut_inside_its_length_waits(cut: int) -> None:
    data = _publish_packet("t", b"y" * 20_000, 3)  # three-byte remaining length
    assert w.split(data[:cut]) == ([], 0)
    assert w.split(data)[1] == len(data)


def test_a_fifth_length_byte_is_refused() -> None:
    with pytest.raises(ProtocolError):
        w.split(b"\x30\xff\xff\xff\xff\x01")


def test_user_properties_come_out_in_order() -> None:
    props = _user_property("id", "snap-1") + _user_property("seq", "42") + b"\x01\x00"
    packets, _ = w.split(_publish_packet("dcor/v1/a/snapshot/cam1", b"\xff\xd8", 9, props))
    m = packets[0]
    assert isinstance(m, Message)
    assert m.user_properties == [("id", "snap-1"), ("seq", "42")]
    assert m.payload == b"\xff\xd8"


def test_qos0_has_no_packet_id() -> None:
    packets, _ = w.split(_publish_packet("dcor/v1/a/state", b"{}", None, first=0x31))
    assert packets == [Message("dcor/v1/a/state", b"{}", 0, None, True)]


@pytest.mark.parametrize("data", [
    _publish_packet("t", b"{}", 1, first=0x34),  # QoS 2: the hub never subscribes at 2
    b"\x32\x03\x00\x05ab",  # topic longer than the packet
    b"\x32\x04\x00\x01t\x00",  # no room for the properties length
    bytes([0x32, 7]) + w._str("t") + b"\x00\x01" + b"\x05\x26",  # properties run past
    bytes([0x32, 8]) + w._str("t") + b"\x00\x01" + b"\x02\x7f\x00",  # unknown property
    bytes([0x32, 6]) + b"\x00\x01\xff" + b"\x00\x01\x00",  # topic not UTF-8
])
def test_malformed_publish_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        w.split(data)


def test_connack_with_properties() -> None:
    props = (bytes([w.RECEIVE_MAXIMUM]) + (128).to_bytes(2, "big")
             + bytes([w.SERVER_KEEP_ALIVE]) + (60).to_bytes(2, "big")
             + bytes([0x12]) + w._str("auto-1"))
    data = bytes([0x20, 2 + 1 + len(props), 0x01, 0x00, len(props)]) + props
    ack = w.connack(w.split(data)[0][0])  # type: ignore[arg-type]
    assert ack.session_present and ack.reason == 0
    assert ack.properties == {w.RECEIVE_MAXIMUM: 128, w.SERVER_KEEP_ALIVE: 60, 0x12: "auto-1"}


def test_connack_refusal_and_short_forms() -> None:
    assert w.connack(Packet(w.CONNACK, 0, b"\x00\x87\x00")).reason == 0x87
    assert w.connack(Packet(w.CONNACK, 0, b"\x00\x00")).properties == {}
    with pytest.raises(ProtocolError):
        w.connack(Packet(w.SUBACK, 0, b"\x00\x00"))


def test_connect_bytes() -> None:
    data = w.connect("hub-w1", 30, session_expiry_s=3600, receive_maximum=20_000,
                     username="dcor-hub", password="pw")
    packets, pos = w.split(data)
    p = packets[0]
    assert pos == len(data) and isinstance(p, Packet) and p.kind == w.CONNECT
    body = p.body
    assert body[:7] == b"\x00\x04MQTT\x05"
    assert body[7] == 0xC0  # username, password; clean start off: the session persists
    assert int.from_bytes(body[8:10], "big") == 30
    plen, i = w._read_varint(body, 10)
    assert w.properties(body[i:i + plen]) == {w.SESSION_EXPIRY: 3600,
                                             w.RECEIVE_MAXIMUM: 20_000}
    assert body[i + plen:].endswith(w._str("hub-w1") + w._str("dcor-hub") + w._str("pw"))


def test_subscribe_puback_and_replies() -> None:
    sub = w.split(w.subscribe(1, ["$share/g/dcor/v1/+/health", "dcor/v1/+/state"]))[0][0]
    assert isinstance(sub, Packet) and sub.kind == w.SUBSCRIBE and sub.flags == 2
    assert sub.body.endswith(w._str("dcor/v1/+/state") + b"\x01")
    assert w.puback(0x0102) == b"\x40\x02\x01\x02"
    assert w.reason_codes(Packet(w.SUBACK, 0, b"\x00\x01\x00\x01\x87")) == [1, 0x87]
    assert w.ack_reason(Packet(w.PUBACK, 0, b"\x00\x05")) == 0
    assert w.ack_reason(Packet(w.PUBACK, 0, b"\x00\x05\x10\x00")) == 0x10
    reason = bytes([w.REASON_STRING]) + w._str("session taken over")
    assert w.disconnect_reason(Packet(w.DISCONNECT_T, 0, b"\x8e" + bytes([len(reason)])
                                      + reason)) == (0x8E, "session taken over")
    assert w.disconnect_reason(Packet(w.DISCONNECT_T, 0, b"")) == (0, "")
