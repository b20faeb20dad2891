"""Notification channels: signed webhooks with retries, and MQTT messages for other systems.

Webhook request: ``POST`` of the JSON payload with headers
  ``X-Dcor-Delivery``   the notification id; stable across retries, so receivers can dedupe
  ``X-Dcor-Timestamp``  unix seconds of this attempt
  ``X-Dcor-Signature``  ``sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``
2xx is delivered; 408, 425, 429, 5xx and connection errors are retried; other statuses are
final. Retry schedule (monotonic clock): the delay before attempt k+1 is
``min(max_delay_s, base_delay_s * 2**(k-1))`` scaled by a jitter factor in [0.5, 1.0), and no
attempt starts after ``deadline_s`` from the first. Delivery is at least once: a receiver that
answered too slowly may see the same ``X-Dcor-Delivery`` twice.

MQTT: one message per desk on ``dcor/v1/_hub/alerts/<desk>``, QoS 1, not retained. ``_hub``
cannot be a device id (those start with a letter or digit), so devices can never publish there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import requests
from pydantic import BaseModel, ConfigDict, Field

from dcor_wire.canonical import canonical_json
from dcor_wire.topics import ROOT
from hub.alerts.model import Notification
from hub.alerts.rules import DESK_ID_PATTERN, Rule
from hub.alerts.texts import render_all

ALERT_TOPIC_ROOT: Final = f"{ROOT}/_hub/alerts"
_RETRY_STATUSES: Final = frozenset({408, 425, 429})


class NotifyError(RuntimeError):
    """A channel is misconfigured (e.g. its secret cannot be read)."""


def notification_payload(n: Notification, rule: Rule | None = None) -> dict[str, Any]:
    """The JSON document every channel sends: facts plus the text in both languages."""
    s = n.subject
    return {
        "v": 1, "id": n.id, "kind": n.kind, "alert_id": n.alert_id, "rule": n.rule_id,
        "rule_kind": n.rule_kind, "severity": n.severity, "desks": list(n.desks),
        "subject": {"kind": s.kind, "key": s.key, "kecamatan": s.kecamatan,
                    "kelurahan": s.kelurahan, "device": s.device, "camera": s.camera,
                    "zone": s.zone},
        "at": n.at.isoformat(), "since": n.since.isoformat(), "value": n.value,
        "detail": n.detail, "members": n.members, "step": n.step, "text": render_all(n, rule),
    }


@dataclass(frozen=True, slots=True)
class MqttMessage:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


def alert_topic(desk: str) -> str:
    if not re.fullmatch(DESK_ID_PATTERN, desk):
        raise ValueError(f"invalid desk id {desk!r} for an MQTT topic")
    return f"{ALERT_TOPIC_ROOT}/{desk}"


def mqtt_messages(n: Notification, rule: Rule | None = None) -> list[MqttMessage]:
    body = canonical_json(notification_payload(n, rule))
    return [MqttMessage(alert_topic(desk), body) for desk in n.desks]


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: bytes, timestamp: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), header)


class WebhookConfig(BaseModel):
    """One webhook receiver. The secret is a reference (environment variable or file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["webhook"] = "webhook"
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="Channel name")
    url: str = Field(pattern=r"^https?://", description="Receiver URL")
    secret_env: str | None = Field(default=None, description="Environment variable of secret")
    secret_file: Path | None = Field(default=None, description="File holding the secret")
    desks: list[str] = Field(default_factory=list, description="Only these desks; [] = all")
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    attempts: int = Field(default=4, ge=1, le=20)
    base_delay_s: float = Field(default=0.5, gt=0, le=60)
    max_delay_s: float = Field(default=8.0, gt=0, le=600)
    deadline_s: float = Field(default=60.0, gt=0, le=3600)

    def secret(self, env: Mapping[str, str] | None = None) -> bytes:
        env = os.environ if env is None else env
        if self.secret_env:
            if self.secret_env not in env:
                raise NotifyError(f"webhook {self.name}: set {self.secret_env} to its secret")
            return env[self.secret_env].encode()
        if self.secret_file:
            try:
                return self.secret_file.read_bytes().strip()
            except OSError as exc:
                raise NotifyError(f"webhook {self.name}: cannot read {self.secret_file}: "
                                  f"{exc.strerror}") from exc
        raise NotifyError(f"webhook {self.name}: give secret_env or secret_file")

    def wants(self, n: Notification) -> bool:
        return not self.desks or any(d in self.desks for d in n.desks)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    ok: bool
    attempts: int
    status: int | None = None  # last HTTP status, None when no response came
    error: str = ""
    retryable: bool = False  # failed, but a later try may succeed


class WebhookSender:
    def __init__(
        self,
        config: WebhookConfig,
        secret: bytes,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._secret = secret
        self._session = session or requests.Session()
        self._sleep, self._monotonic, self._wall, self._jitter = sleep, monotonic, wall, jitter

    def close(self) -> None:
        self._session.close()

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        c = self.config
        raw = min(c.max_delay_s, c.base_delay_s * 2 ** (attempt - 1))
        return raw * (0.5 + self._jitter() / 2)

    def send(self, n: Notification, rule: Rule | None = None) -> DeliveryResult:
        body = json.dumps(notification_payload(n, rule), ensure_ascii=False).encode("utf-8")
        start = self._monotonic()
        result = DeliveryResult(False, 0, error="not attempted")
        for attempt in range(1, self.config.attempts + 1):
            result = self._attempt(n.id, body, attempt)
            if result.ok or not result.retryable or attempt == self.config.attempts:
                return result
            pause = self.delay(attempt)
            if self._monotonic() + pause - start > self.config.deadline_s:
                return result
            self._sleep(pause)
        return result

    def _attempt(self, delivery_id: str, body: bytes, attempt: int) -> DeliveryResult:
        stamp = str(int(self._wall()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Dcor-Delivery": delivery_id,
            "X-Dcor-Timestamp": stamp,
            "X-Dcor-Signature": sign(self._secret, stamp, body),
        }
        try:
            resp = self._session.post(self.config.url, data=body, headers=headers,
                                      timeout=self.config.timeout_s, allow_redirects=False)
        except requests.RequestException as exc:
            return DeliveryResult(False, attempt, None, f"{type(exc).__name__}: {exc}", True)
        with resp:
            status = resp.status_code
        if 200 <= status < 300:
            return DeliveryResult(True, attempt, status)
        retry = status >= 500 or status in _RETRY_STATUSES
        return DeliveryResult(False, attempt, status, f"HTTP {status}", retry)
