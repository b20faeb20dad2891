"""Pure rules: signatures, the document schema, composition over agent.yaml, the health gate
and which stages a change restarts."""

from __future__ import annotations

import base64
import json

import pytest

from dcor_wire.configdoc import DocError, compose, model_refs, parse_doc, resolve_models
from dcor_wire.signing import SignatureError, key_id, sign, verify
from edge_agent.config import validate_config
from edge_agent.remoteconf.gate import HealthGate, Probe
from edge_agent.remoteconf.stages import diff_stages
from provisioning import pki
from tests.config.docs import planned

KEY, OTHER = pki.make_signing_key(), pki.make_signing_key()


def test_sign_and_verify_round_trip() -> None:
    env = sign({"a": 1, "b": [1.5, "é"]}, KEY)
    assert env["key_id"] == key_id(KEY.public_key())
    assert verify(json.dumps(env).encode(), KEY.public_key()) == {"a": 1, "b": [1.5, "é"]}


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda e: e.pop("sig"), "unsigned"),
    (lambda e: e.update(alg="rsa"), "malformed"),
    (lambda e: e.update(doc="text"), "malformed"),
    (lambda e: e["doc"].update(a=2), "bad_signature"),
    (lambda e: e.update(sig=base64.urlsafe_b64encode(b"x" * 64).decode()), "bad_signature"),
    (lambda e: e.update(sig="!!not base64!!"), "bad_signature"),
    (lambda e: e.update(key_id=key_id(OTHER.public_key())), "wrong_key"),
])
def test_verify_names_what_is_wrong(mutate, reason: str) -> None:
    env = sign({"a": 1}, KEY)
    mutate(env)
    with pytest.raises(SignatureError) as info:
        verify(env, KEY.public_key())
    assert info.value.reason == reason


def test_a_document_signed_by_another_key_is_the_wrong_key() -> None:
    with pytest.raises(SignatureError) as info:
        verify(sign({"a": 1}, OTHER), KEY.public_key())
    assert info.value.reason == "wrong_key"


def _doc(**over):
    p = planned({"health": {"interval": 5}})
    doc = {"device_id": "box-001", "version": 3, "issued_ms": 1, "digest": p["digest"],
           "config": p["config"]}
    doc.update(over)
    return doc


@pytest.mark.parametrize(("over", "reason"), [
    ({"digest": "sha256:" + "0" * 64}, "bad_digest"),
    ({"version": 0}, "malformed"),
    ({"extra": 1}, "malformed"),
    ({"device_id": "Bad/Id"}, "malformed"),
    ({"config": {"outbox": {"path": "/tmp/x"}}, "digest": planned(
        {"outbox": {"path": "/tmp/x"}})["digest"]}, "invalid"),
    ({"config": {"detector": {"model": "model://det"}}, "digest": planned(
        {"detector": {"model": "model://det"}})["digest"]}, "invalid"),
])
def test_document_rules(over: dict, reason: str) -> None:
    with pytest.raises(DocError) as info:
        parse_doc(_doc(**over))
    assert info.value.reason == reason


def test_compose_keeps_the_box_own_identity_and_paths() -> None:
    local = {"device_id": "box-001", "mqtt": {"host": "hub", "port": 8883, "keepalive_s": 30},
             "outbox": {"path": "/data/ob.sqlite", "window": 8}, "cameras": [{"id": "a"}]}
    out = compose(local, {"mqtt": {"keepalive_s": 60}, "outbox": {"window": 16},
                          "cameras": []})
    assert out["mqtt"] == {"host": "hub", "port": 8883, "keepalive_s": 60}
    assert out["outbox"] == {"path": "/data/ob.sqlite", "window": 16}
    assert out["cameras"] == []  # lists are replaced whole
    assert out["device_id"] == "box-001"


def test_model_references() -> None:
    cfg = {"detector": {"model": "model://det", "labels": "model://labels"}, "x": ["y"]}
    assert model_refs(cfg) == {"det", "labels"}
    assert resolve_models(cfg, {"det": "/m/1", "labels": "/m/2"})["detector"] == \
        {"model": "/m/1", "labels": "/m/2"}


def test_the_gate_keeps_after_settling_and_gives_back_at_the_deadline() -> None:
    base = Probe(True, {"c1": "no_frames"}, {"c1": 0})
    good = Probe(True, {"c1": "streaming"}, {"c1": 3})
    gate = HealthGate(0.0, grace_s=10, settle_s=2, baseline=base)
    assert gate.observe(base, 1.0).state == "pending"
    assert gate.observe(good, 2.0).state == "pending"
    assert gate.observe(Probe(False, {"c1": "streaming"}, {"c1": 4}), 3.0).state == "pending"
    assert gate.observe(good, 4.0).state == "pending"
    assert gate.observe(good, 6.0).state == "healthy"
    stuck = HealthGate(0.0, grace_s=5, settle_s=1, baseline=base)
    verdict = stuck.observe(Probe(True, {"c1": "streaming"}, {"c1": 0}), 5.0)
    assert verdict.state == "failed" and "no inference" in verdict.reason
    # A covered or frozen picture is the scene, not the configuration.
    scene = HealthGate(0.0, grace_s=5, settle_s=0, baseline=Probe(True))
    assert scene.observe(Probe(True, {"c1": "covered"}), 0.1).state == "healthy"


def _cfg(**over):
    base = {"device_id": "box-001", "cameras": [
        {"id": "a", "type": "synthetic"}, {"id": "b", "type": "synthetic"}]}
    base.update(over)
    return validate_config(base)


@pytest.mark.parametrize(("over", "names"), [
    ({}, []),
    ({"profile": "x"}, []),
    ({"health": {"interval": 3}}, ["health"]),
    ({"mqtt": {"keepalive_s": 60}}, ["uplink"]),
    ({"metrics_port": 9100}, ["metrics"]),
    ({"cameras": [{"id": "a", "type": "synthetic", "fps": 5},
                  {"id": "b", "type": "synthetic"}]}, ["camera:a"]),
    ({"cameras": [{"id": "b", "type": "synthetic"}, {"id": "c", "type": "synthetic"}]},
     ["camera:a", "camera:c"]),
    ({"detector": {"threads": 1}}, ["detector", "camera:a", "camera:b"]),
])
def test_only_changed_stages_restart(over: dict, names: list[str]) -> None:
    assert diff_stages(_cfg(), _cfg(**over)).names() == names
