"""Topic builders and parsers for ``dcor/v1/<device_id>/...``.

Every topic is built and parsed here, and the broker ACLs are generated from the same
builders, so the three cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

ROOT: Final = "dcor/v1"
DEVICE_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")
CAMERA_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
COMMAND_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")

# Leaf topics an agent publishes (agent -> hub).
STATE: Final = "state"
HEALTH: Final = "health"
DETECTIONS: Final = "detections"
EVENTS: Final = "events"
CONFIG_REPORTED: Final = "config/reported"
REPLY: Final = "reply"  # MQTT 5 responses to cmd/<name> (the request's response topic)
SNAPSHOT: Final = "snapshot"
CLIP: Final = "clip"
# Leaf topics the hub publishes (hub -> agent).
ACK: Final = "ack"
CONFIG_DESIRED: Final = "config/desired"
CMD: Final = "cmd"

AGENT_JSON_KINDS: Final = (STATE, HEALTH, DETECTIONS, EVENTS, CONFIG_REPORTED)


class TopicError(ValueError):
    """A topic or one of its parts does not follow the wire contract."""


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` unchanged, or raise TopicError naming what is wrong."""
    if not isinstance(device_id, str) or not DEVICE_ID_RE.fullmatch(device_id):
        raise TopicError(
            f"invalid device id {device_id!r}: use 3-63 characters a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    return device_id


def check_camera_id(camera_id: str) -> str:
    if not isinstance(camera_id, str) or not CAMERA_ID_RE.fullmatch(camera_id):
        raise TopicError(
            f"invalid camera id {camera_id!r}: use 1-32 characters a-z, 0-9, '_' and '-'"
        )
    return camera_id


def device_root(device_id: str) -> str:
    return f"{ROOT}/{check_device_id(device_id)}"


def device_topic(device_id: str, leaf: str) -> str:
    """``dcor/v1/<device_id>/<leaf>`` for one of the fixed leaves (state, health, ...)."""
    if leaf not in _FIXED_LEAVES:
        raise TopicError(f"unknown topic leaf {leaf!r}")
    return f"{device_root(device_id)}/{leaf}"


def snapshot_topic(device_id: str, camera_id: str) -> str:
    return f"{device_root(device_id)}/{SNAPSHOT}/{check_camera_id(camera_id)}"


def clip_topic(device_id: str, camera_id: str) -> str:
    return f"{device_root(device_id)}/{CLIP}/{check_camera_id(camera_id)}"


def cmd_topic(device_id: str, name: str) -> str:
    if not COMMAND_RE.fullmatch(name):
        raise TopicError(f"invalid command name {name!r}")
    return f"{device_root(device_id)}/{CMD}/{name}"


_FIXED_LEAVES: Final = frozenset(
    {STATE, HEALTH, DETECTIONS, EVENTS, CONFIG_REPORTED, REPLY, ACK, CONFIG_DESIRED}
)


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    device_id: str
    kind: str  # a fixed leaf, or "snapshot", "clip", "cmd"
    sub: str | None = None  # camera id for snapshot/clip, command name for cmd


def parse_topic(topic: str) -> ParsedTopic:
    """Split a concrete topic into device id, kind and sub-part; raise TopicError if foreign."""
    prefix = ROOT + "/"
    if not topic.startswith(prefix):
        raise TopicError(f"topic {topic!r} is not under {ROOT}/")
    rest = topic[len(prefix):]
    device_id, sep, leaf = rest.partition("/")
    if not sep:
        raise TopicError(f"topic {topic!r} has no leaf")
    check_device_id(device_id)
    if leaf in _FIXED_LEAVES:
        return ParsedTopic(device_id, leaf)
    kind, sep, sub = leaf.partition("/")
    if sep and kind in (SNAPSHOT, CLIP):
        return ParsedTopic(device_id, kind, check_camera_id(sub))
    if sep and kind == CMD and COMMAND_RE.fullmatch(sub):
        return ParsedTopic(device_id, kind, sub)
    raise TopicError(f"topic {topic!r} has an unknown leaf {leaf!r}")


# --- subscriptions -------------------------------------------------------------------------

def hub_subscriptions(share_group: str | None = None) -> list[str]:
    """Filters the hub ingest subscribes to, optionally as an MQTT 5 shared subscription."""
    filters = [f"{ROOT}/+/{leaf}" for leaf in AGENT_JSON_KINDS]
    filters += [f"{ROOT}/+/{SNAPSHOT}/+", f"{ROOT}/+/{CLIP}/+"]
    if share_group:
        return [f"$share/{share_group}/{f}" for f in filters]
    return filters


def agent_subscriptions(device_id: str) -> list[str]:
    """What an agent subscribes to: only its own desired config, commands and acks."""
    root = device_root(device_id)
    return [f"{root}/{CONFIG_DESIRED}", f"{root}/{CMD}/#", f"{root}/{ACK}"]


def agent_publish_filter(device_id: str) -> str:
    """Everything an agent may publish: its own subtree."""
    return f"{device_root(device_id)}/#"


def agent_publish_topics(device_id: str) -> list[str]:
    """The exact topics (and per-camera filters) an agent publishes on: what its broker role
    allows. Narrower than ``agent_publish_filter``: a box cannot write its own ``ack`` or
    ``config/desired``, which only the hub sends."""
    root = device_root(device_id)
    leaves = [*AGENT_JSON_KINDS, REPLY, f"{SNAPSHOT}/+", f"{CLIP}/+"]
    return [f"{root}/{leaf}" for leaf in leaves]
