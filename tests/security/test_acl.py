"""Broker roles come from the wire contract's builders; the plugin file matches Mosquitto's."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest

from dcor_wire import topics
from hub.broker import acl
from hub.broker.dynsec_file import hash_password


def test_a_device_role_is_exactly_its_own_topics():
    role = acl.device_role("beji-01")
    by_type: dict[str, list[str]] = {}
    for a in role.acls:
        assert a.allow
        by_type.setdefault(a.acltype, []).append(a.topic)
    assert by_type["publishClientSend"] == topics.agent_publish_topics("beji-01")
    assert by_type["subscribeLiteral"] == topics.agent_subscriptions("beji-01")
    assert by_type["publishClientReceive"] == topics.agent_subscriptions("beji-01")
    assert set(by_type) == {"publishClientSend", "subscribeLiteral", "publishClientReceive"}
    assert all(t.startswith("dcor/v1/beji-01/") for ts in by_type.values() for t in ts)
    assert acl.DEFAULT_ACL_ACCESS == {"publishClientSend": False,
                                      "publishClientReceive": False,
                                      "subscribe": False, "unsubscribe": True}


def test_device_ids_are_checked_before_they_reach_an_acl():
    with pytest.raises(topics.TopicError):
        acl.device_role("a/#")


@pytest.mark.skipif(shutil.which("mosquitto_ctrl") is None, reason="mosquitto-clients missing")
def test_password_hash_matches_mosquitto_ctrl(tmp_path):
    path = tmp_path / "ds.json"
    subprocess.run(["mosquitto_ctrl", "dynsec", "init", str(path), "admin", "s3cret-pw"],
                   check=True, capture_output=True, timeout=30)
    client = json.loads(path.read_text())["clients"][0]
    ours = hash_password("s3cret-pw", base64.b64decode(client["salt"]))
    assert (ours["password"], ours["iterations"]) == (client["password"],
                                                      client["iterations"])
