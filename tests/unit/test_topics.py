"""dcor_wire.topics: ids checked wherever a topic is built or parsed; subscription filters."""

from __future__ import annotations

from typing import Any

import pytest

from dcor_wire import topics
from dcor_wire.topics import ParsedTopic, TopicError

VALID_IDS = [
    "abc",  # shortest: 3
    "a" * 63,  # longest: 63
    "cam-001",
    "0ab",
    "beji-pole-12",
    "a--",
]

INVALID_IDS: list[Any] = [
    "",
    "ab",  # too short
    "a" * 64,  # too long
    "Cam-001",  # uppercase
    "cam/001",
    "cam+001",
    "cam#001",
    "-cam",  # leading dash
    "cam_001",  # underscore is for camera ids only
    "cam 001",
    "cam-001\n",  # a trailing newline must not slip past the pattern
    "kamera-é",
    None,
    123,
    b"cam-001",
]


@pytest.mark.parametrize("device_id", VALID_IDS)
def test_valid_device_ids_pass_unchanged(device_id: str) -> None:
    assert topics.check_device_id(device_id) == device_id


@pytest.mark.parametrize("device_id", INVALID_IDS)
def test_invalid_device_ids_are_refused(device_id: Any) -> None:
    with pytest.raises(TopicError, match="invalid device id"):
        topics.check_device_id(device_id)


@pytest.mark.parametrize("device_id", INVALID_IDS)
def test_builders_refuse_invalid_device_ids(device_id: Any) -> None:
    builders = [
        lambda: topics.device_topic(device_id, topics.HEALTH),
        lambda: topics.snapshot_topic(device_id, "cam1"),
        lambda: topics.clip_topic(device_id, "cam1"),
        lambda: topics.cmd_topic(device_id, "ping"),
        lambda: topics.agent_subscriptions(device_id),
        lambda: topics.agent_publish_filter(device_id),
    ]
    for build in builders:
        with pytest.raises(TopicError):
            build()


def test_topic_error_is_a_value_error() -> None:
    assert issubclass(TopicError, ValueError)


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        (topics.STATE, "dcor/v1/cam-001/state"),
        (topics.HEALTH, "dcor/v1/cam-001/health"),
        (topics.DETECTIONS, "dcor/v1/cam-001/detections"),
        (topics.EVENTS, "dcor/v1/cam-001/events"),
        (topics.CONFIG_REPORTED, "dcor/v1/cam-001/config/reported"),
        (topics.CONFIG_DESIRED, "dcor/v1/cam-001/config/desired"),
        (topics.ACK, "dcor/v1/cam-001/ack"),
    ],
)
def test_device_topic_builds_fixed_leaves(leaf: str, expected: str) -> None:
    assert topics.device_topic("cam-001", leaf) == expected


@pytest.mark.parametrize("leaf", ["", "snapshot", "cmd", "health/x", "#", "+", "config"])
def test_device_topic_refuses_unknown_leaves(leaf: str) -> None:
    with pytest.raises(TopicError, match="unknown topic leaf"):
        topics.device_topic("cam-001", leaf)


def test_snapshot_clip_and_cmd_topics() -> None:
    assert topics.snapshot_topic("cam-001", "front_gate") == "dcor/v1/cam-001/snapshot/front_gate"
    assert topics.clip_topic("cam-001", "c-2") == "dcor/v1/cam-001/clip/c-2"
    assert topics.cmd_topic("cam-001", "snapshot_now") == "dcor/v1/cam-001/cmd/snapshot_now"


@pytest.mark.parametrize("camera_id", ["", "Cam1", "a/b", "a+", "#", "_cam", "c" * 33, "kam é"])
def test_camera_ids_are_checked(camera_id: str) -> None:
    with pytest.raises(TopicError, match="invalid camera id"):
        topics.snapshot_topic("cam-001", camera_id)
    with pytest.raises(TopicError, match="invalid camera id"):
        topics.clip_topic("cam-001", camera_id)


@pytest.mark.parametrize("name", ["", "Ping", "1ping", "ping/now", "#", "+", "p-ing", "p" * 33])
def test_command_names_are_checked(name: str) -> None:
    with pytest.raises(TopicError, match="invalid command name"):
        topics.cmd_topic("cam-001", name)


ROUND_TRIPS = [
    (topics.device_topic("cam-001", leaf), ParsedTopic("cam-001", leaf))
    for leaf in (topics.STATE, topics.HEALTH, topics.DETECTIONS, topics.EVENTS,
                 topics.CONFIG_REPORTED, topics.CONFIG_DESIRED, topics.ACK)
] + [
    (topics.snapshot_topic("a" * 63, "cam1"), ParsedTopic("a" * 63, "snapshot", "cam1")),
    (topics.clip_topic("abc", "c_9"), ParsedTopic("abc", "clip", "c_9")),
    (topics.cmd_topic("abc", "upload_clip"), ParsedTopic("abc", "cmd", "upload_clip")),
]


@pytest.mark.parametrize(("topic", "parsed"), ROUND_TRIPS)
def test_parse_topic_round_trips(topic: str, parsed: ParsedTopic) -> None:
    assert topics.parse_topic(topic) == parsed


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "dcor/v1",
        "dcor/v1/",
        "dcor/v2/cam-001/health",  # another contract version
        "other/v1/cam-001/health",
        "/dcor/v1/cam-001/health",
        "DCOR/v1/cam-001/health",
        "dcor/v1/cam-001",  # no leaf
        "dcor/v1/cam-001/",  # empty leaf
        "dcor/v1/Cam-001/health",  # invalid device id
        "dcor/v1/+/health",  # a filter, not a concrete topic
        "dcor/v1/#",
        "dcor/v1/cam-001/#",
        "dcor/v1/cam-001/healthz",
        "dcor/v1/cam-001/health/extra",
        "dcor/v1/cam-001/config",
        "dcor/v1/cam-001/snapshot",  # no camera
        "dcor/v1/cam-001/snapshot/",
        "dcor/v1/cam-001/snapshot/Cam1",
        "dcor/v1/cam-001/snapshot/cam1/extra",
        "dcor/v1/cam-001/clip/+",
        "dcor/v1/cam-001/cmd/",
        "dcor/v1/cam-001/cmd/Ping",
        "dcor/v1/cam-001/cmd/ping/extra",
        "dcor/v1//health",
        "$SYS/broker/uptime",
    ],
)
def test_parse_topic_refuses_foreign_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        topics.parse_topic(topic)


def test_hub_subscriptions_cover_every_agent_topic() -> None:
    filters = topics.hub_subscriptions()
    assert filters == [
        "dcor/v1/+/state",
        "dcor/v1/+/health",
        "dcor/v1/+/detections",
        "dcor/v1/+/events",
        "dcor/v1/+/config/reported",
        "dcor/v1/+/snapshot/+",
        "dcor/v1/+/clip/+",
    ]
    # The hub must not listen to what it publishes itself.
    assert not any(f.endswith(("/ack", "/config/desired", "/#")) or "/cmd/" in f for f in filters)


def test_hub_subscriptions_as_shared_subscription() -> None:
    shared = topics.hub_subscriptions("dcor-hub")
    assert shared == [f"$share/dcor-hub/{f}" for f in topics.hub_subscriptions()]
    assert topics.hub_subscriptions("") == topics.hub_subscriptions()


def test_agent_subscriptions_are_its_own_desired_config_commands_and_acks() -> None:
    assert topics.agent_subscriptions("cam-001") == [
        "dcor/v1/cam-001/config/desired",
        "dcor/v1/cam-001/cmd/#",
        "dcor/v1/cam-001/ack",
    ]
    assert topics.agent_publish_filter("cam-001") == "dcor/v1/cam-001/#"


def test_every_agent_json_kind_builds_and_parses() -> None:
    for kind in topics.AGENT_JSON_KINDS:
        parsed = topics.parse_topic(topics.device_topic("beji-01", kind))
        assert (parsed.device_id, parsed.kind, parsed.sub) == ("beji-01", kind, None)
