"""MQTT 5 packets the hub's ingest connection needs, encoded and parsed from byte buffers.

Pure: no sockets, no clocks. The ingest worker receives every message of the fleet, and a
general client library spends more per packet than validating and storing it (it reads each
packet with several calls, builds a message object and property objects, and writes each
PUBACK by itself). Here a whole read of the socket is split into packets in one pass and a
PUBLISH becomes a plain tuple. Only what the hub uses is supported: CONNECT with a persistent
session, SUBSCRIBE at QoS 1, PUBLISH in (QoS 0/1) and out (QoS 1), PUBACK both ways, PINGREQ,
DISCONNECT. Spec references are to MQTT 5.0 (OASIS, 2019).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

# Fixed-header packet types (the high nibble of the first byte), 2.1.2.
CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ_T, PINGRESP, DISCONNECT_T, AUTH = 8, 9, 12, 13, 14, 15

PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"  # normal disconnection: the session (and its queue) stays

# Property identifiers (2.2.2.2) and how each one's value is encoded.
SESSION_EXPIRY = 0x11
SERVER_KEEP_ALIVE = 0x13
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
_PROPERTY_TYPES = {
    0x01: _BYTE, 0x02: _U32, 0x03: _STR, 0x08: _STR, 0x09: _BIN, 0x0B: _VARINT,
    0x11: _U32, 0x12: _STR, 0x13: _U16, 0x15: _STR, 0x16: _BIN, 0x17: _BYTE, 0x18: _U32,
    0x19: _BYTE, 0x1A: _STR, 0x1C: _STR, 0x1F: _STR, 0x21: _U16, 0x22: _U16, 0x23: _U16,
    0x24: _BYTE, 0x25: _BYTE, 0x26: _PAIR, 0x27: _U32, 0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}
MAX_REMAINING_LENGTH = 268_435_455  # four varint bytes, 1.5.5

_U16_AT = struct.Struct(">H").unpack_from
_PUBACK = struct.Struct(">BBH").pack


class ProtocolError(ValueError):
    """The peer sent something that is not MQTT 5 as this client speaks it."""


# --- encoding -------------------------------------------------------------------------------

def varint(n: int) -> bytes:
    """Variable Byte Integer, 1.5.5."""
    if not 0 <= n <= MAX_REMAINING_LENGTH:
        raise ValueError(f"{n} does not fit a variable byte integer")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def _bin(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def connect(client_id: str, keepalive_s: int, *, clean_start: bool = False,
            session_expiry_s: int = 0, receive_maximum: int = 65_535,
            username: str | None = None, password: str | None = None) -> bytes:
    """CONNECT, 3.1."""
    flags = (0x02 if clean_start else 0) | (0x80 if username else 0) | (
        0x40 if password else 0)
    props = bytes([SESSION_EXPIRY]) + session_expiry_s.to_bytes(4, "big")
    props += bytes([RECEIVE_MAXIMUM]) + receive_maximum.to_bytes(2, "big")
    body = _str("MQTT") + bytes([5, flags]) + keepalive_s.to_bytes(2, "big")
    body += varint(len(props)) + props + _str(client_id)
    if username:
        body += _str(username)
    if password:
        body += _bin(password.encode())
    return _packet(CONNECT << 4, body)


def subscribe(packet_id: int, filters: Iterable[str], qos: int = 1) -> bytes:
    """SUBSCRIBE, 3.8: every filter in one packet, no options beyond the QoS."""
    body = packet_id.to_bytes(2, "big") + b"\x00"
    for f in filters:
        body += _str(f) + bytes([qos])
    return _packet((SUBSCRIBE << 4) | 0x02, body)


def publish(topic: str, payload: bytes, packet_id: int, retain: bool = False) -> bytes:
    """A QoS 1 PUBLISH, 3.3, without properties."""
    body = _str(topic) + packet_id.to_bytes(2, "big") + b"\x00" + payload
    return _packet((PUBLISH << 4) | 0x02 | (0x01 if retain else 0), body)


def puback(packet_id: int) -> bytes:
    """PUBACK with reason Success, which may be left out when there are no properties."""
    return _PUBACK(PUBACK << 4, 2, packet_id)


# --- parsing --------------------------------------------------------------------------------

@dataclass(slots=True)
class Message:
    """An incoming PUBLISH. ``packet_id`` is 0 for QoS 0 (nothing to acknowledge)."""

    topic: str
    payload: bytes
    packet_id: int
    user_properties: list[tuple[str, str]] | None = None
    retain: bool = False


@dataclass(slots=True)
class Packet:
    """Any other packet: its type, the flags nibble and its body after the fixed header."""

    kind: int
    flags: int
    body: bytes


@dataclass
class ConnAck:
    session_present: bool
    reason: int
    properties: dict[int, object] = field(default_factory=dict)


def split(data: bytes, start: int = 0) -> tuple[list[Message | Packet], int]:
    """Every complete packet in ``data`` from ``start``: the packets and where the first
    incomplete one begins (the caller keeps those bytes for the next read)."""
    out: list[Message | Packet] = []
    n = len(data)
    pos = start
    while pos + 2 <= n:
        first = data[pos]
        # Remaining length, 1.5.5: almost always one or two bytes.
        b = data[pos + 1]
        length = b & 0x7F
        i = pos + 2
        shift = 7
        while b & 0x80:
            if i >= n:
                return out, pos
            if shift > 21:
                raise ProtocolError("remaining length longer than four bytes")
            b = data[i]
            length |= (b & 0x7F) << shift
            shift += 7
            i += 1
        end = i + length
        if end > n:
            return out, pos
        if first >> 4 == PUBLISH:
            out.append(_publish(first, data, i, end))
        else:
            out.append(Packet(first >> 4, first & 0x0F, data[i:end]))
        pos = end
    return out, pos


def _publish(first: int, data: bytes, i: int, end: int) -> Message:
    qos = (first >> 1) & 0x03
    if qos > 1:
        raise ProtocolError(f"PUBLISH at QoS {qos}: the hub subscribes at QoS 1")
    if i + 2 > end:
        raise ProtocolError("PUBLISH shorter than its topic length")
    (tlen,) = _U16_AT(data, i)
    i += 2
    if i + tlen + (3 if qos else 1) > end:
        raise ProtocolError("PUBLISH shorter than its topic, packet id and properties")
    try:
        topic = data[i:i + tlen].decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError("PUBLISH topic is not UTF-8") from exc
    i += tlen
    packet_id = 0
    if qos:
        (packet_id,) = _U16_AT(data, i)
        i += 2
    b = data[i]
    if b == 0:  # no properties: the common case for telemetry
        return Message(topic, data[i + 1:end], packet_id, None, bool(first & 0x01))
    plen, i = _read_varint(data, i)
    if i + plen > end:
        raise ProtocolError("PUBLISH properties run past the packet")
    props = properties(data[i:i + plen])
    pairs = props.get(USER_PROPERTY)
    return Message(topic, data[i + plen:end], packet_id,
                   pairs if isinstance(pairs, list) else None, bool(first & 0x01))


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 21:
            raise ProtocolError("bad variable byte integer")
        b = data[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7


def properties(data: bytes) -> dict[int, object]:
    """A property block (without its length). User properties collect into a list of pairs;
    an unknown identifier is a protocol error (its length cannot be known)."""
    out: dict[int, object] = {}
    i = 0
    try:
        while i < len(data):
            ident = data[i]
            i += 1
            kind = _PROPERTY_TYPES.get(ident)
            if kind is None:
                raise ProtocolError(f"unknown property 0x{ident:02x}")
            value: object
            if kind == _BYTE:
                value, i = data[i], i + 1
            elif kind == _U16:
                value, i = int.from_bytes(data[i:i + 2], "big"), i + 2
            elif kind == _U32:
                value, i = int.from_bytes(data[i:i + 4], "big"), i + 4
            elif kind == _VARINT:
                value, i = _read_varint(data, i)
            elif kind == _PAIR:
                k, i = _read_str(data, i)
                v, i = _read_str(data, i)
                pairs = out.setdefault(USER_PROPERTY, [])
                assert isinstance(pairs, list)
                pairs.append((k, v))
                continue
            else:
                n = int.from_bytes(data[i:i + 2], "big")
                raw, i = data[i + 2:i + 2 + n], i + 2 + n
                value = raw.decode() if kind == _STR else raw
            if i > len(data):
                raise ProtocolError("property runs past its block")
            out[ident] = value
    except (IndexError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"bad property block: {exc}") from exc
    return out


def _read_str(data: bytes, i: int) -> tuple[str, int]:
    n = int.from_bytes(data[i:i + 2], "big")
    if i + 2 + n > len(data):
        raise ProtocolError("string runs past its block")
    return data[i + 2:i + 2 + n].decode(), i + 2 + n


def connack(p: Packet) -> ConnAck:
    """CONNACK, 3.2."""
    if p.kind != CONNACK or len(p.body) < 2:
        raise ProtocolError(f"expected CONNACK, got packet type {p.kind}")
    props: dict[int, object] = {}
    if len(p.body) > 2:
        plen, i = _read_varint(p.body, 2)
        props = properties(p.body[i:i + plen])
    return ConnAck(bool(p.body[0] & 0x01), p.body[1], props)


def reason_codes(p: Packet) -> list[int]:
    """SUBACK's reason codes, one per filter (3.9.3)."""
    plen, i = _read_varint(p.body, 2)
    return list(p.body[i + plen:])


def packet_id(p: Packet) -> int:
    return int.from_bytes(p.body[:2], "big")


def ack_reason(p: Packet) -> int:
    """PUBACK's reason code (3.4.2.1): Success when the byte is left out."""
    return p.body[2] if len(p.body) > 2 else 0


def disconnect_reason(p: Packet) -> tuple[int, str]:
    """DISCONNECT's reason code and reason string, if the server gave them (3.14)."""
    if not p.body:
        return 0, ""
    text = ""
    if len(p.body) > 1:
        plen, i = _read_varint(p.body, 1)
        text = str(properties(p.body[i:i + plen]).get(REASON_STRING, ""))
    return p.body[0], text
