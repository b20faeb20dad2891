"""``dcor-hub alerts``: the composition root of the evaluator process.

Start order: registry (with the alert tables) -> rules (must be valid at start) -> channels
(webhook secrets read now, so a missing one stops the start with a clear message; the MQTT
publisher connects in the background) -> evaluator with its delivery workers. Stop in reverse.
Several of these processes may run against one registry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading

from hub.alerts import tables  # noqa: F401 - registers the alert tables before create_schema
from hub.alerts.delivery import Channel, MqttChannel, WebhookChannel
from hub.alerts.evaluator import AlertEvaluator
from hub.alerts.mqttout import AlertPublisher
from hub.alerts.notify import NotifyError
from hub.alerts.rulefile import RuleFile
from hub.influx import InfluxClient, InfluxConfig
from hub.registry.db import open_registry
from hub.settings import HubSettings, SettingsError

log = logging.getLogger("dcor.hub.alerts")


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def build_channels(settings: HubSettings, worker_id: str) -> list[Channel]:
    """Webhooks from the settings, then MQTT when enabled. Raises ``SettingsError`` when a
    webhook's secret cannot be read."""
    channels: list[Channel] = []
    for hook in settings.alert_webhooks:
        try:
            channels.append(WebhookChannel(hook, hook.secret()))
        except NotifyError as exc:
            raise SettingsError(str(exc)) from exc
    if settings.alert_mqtt:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "-", worker_id)[:60]
        publisher = AlertPublisher(settings, f"{settings.mqtt_client_id}-alerts-{safe}")
        publisher.start()
        channels.append(MqttChannel(publisher))
    return channels


def run_alerts(settings: HubSettings, worker_id: str, stop: threading.Event) -> None:
    """Evaluate and deliver until ``stop`` is set. Raises ``RulesError`` (invalid rules at
    start) or ``SettingsError`` (a webhook secret missing) before anything runs."""
    rule_file = RuleFile(settings.alert_rules_path)
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        registry = open_registry(settings.resolved_database_url())
        stack.callback(registry.close)
        influx = InfluxClient(InfluxConfig(
            url=settings.influx_url.rstrip("/"), database=settings.influx_db,
            username=settings.influx_username,
            password=settings.influx_password.get_secret_value(),
            token=settings.influx_token.get_secret_value(),
            timeout_s=settings.influx_timeout_s,
        ))
        stack.callback(influx.close)
        channels = build_channels(settings, worker_id)
        evaluator = AlertEvaluator(registry, rule_file, influx=influx, channels=channels,
                                   worker_id=worker_id, interval_s=settings.alert_interval_s)
        log.info("alerts %s: rules from %s (%d rules), every %.1f s, channels %s", worker_id,
                 rule_file.source, len(rule_file.current().by_id), settings.alert_interval_s,
                 ", ".join(evaluator.channel_names) or "(none)")
        try:
            evaluator.run(stop)  # stops its delivery workers (and channels) on the way out
        finally:
            evaluator.log_stats()
