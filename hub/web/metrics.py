"""``/metrics`` in Prometheus text format (prometheus-client).

Read from the registry at scrape time, the way ``/api/v1/ingest/stats`` is: every ingest
worker saves its counters there, so several workers add up without a push gateway, and the
devices' outbox figures come from their latest health. A worker restarted under the same id
continues its counters, so they only go down if a worker's row is deleted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Final

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.web.data import load_devices, load_worker_stats
from hub.web.deps import deps
from hub.web.fleet import DeviceRecord
from hub.web.stats import STALE_WORKER_S, WorkerRecord, sum_counters
from hub.web.timefmt import as_utc

bp = Blueprint("metrics", __name__)

# Ingest counter key -> (metric name without _total, help).
COUNTERS: Final = {
    "received": ("dcor_ingest_received", "MQTT messages the ingest workers received"),
    "stored": ("dcor_ingest_stored", "Messages stored in InfluxDB or the on-disk spool"),
    "duplicates": ("dcor_ingest_duplicates",
                   "Messages whose (device, seq) the worker had already received"),
    "points_written": ("dcor_ingest_points_written", "Points InfluxDB accepted"),
    "spooled_batches": ("dcor_ingest_spooled_batches", "Batches written to the spool"),
    "replayed_batches": ("dcor_ingest_replayed_batches", "Spooled batches replayed"),
    "influx_refused_lines": ("dcor_ingest_influx_refused_lines",
                             "Single points InfluxDB refused (400) after bisection"),
    "mqtt_reconnects": ("dcor_ingest_mqtt_reconnects", "Reconnections to the broker"),
    "stale_skipped": ("dcor_ingest_stale_skipped",
                      "Unacknowledged messages of a lost broker connection left for "
                      "redelivery"),
}
# Counter key of a dict by reason -> (metric name, help).
BY_REASON: Final = {
    "rejected_by_reason": ("dcor_ingest_rejected", "Messages refused, by reason"),
    "quarantined_by_reason": ("dcor_ingest_quarantined",
                              "Points set aside because the device clock is out of window"),
}
GAUGES: Final = {
    "spool_depth": ("dcor_ingest_spool_batches", "Batches waiting in the spool"),
    "pending": ("dcor_ingest_pending_messages", "Messages received, not yet written"),
}


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


class FleetCollector(Collector):
    """One scrape's worth of figures, already loaded; ``collect`` only formats them."""

    def __init__(self, workers: list[WorkerRecord], devices: list[DeviceRecord],
                 now: datetime) -> None:
        self.workers = workers
        self.devices = devices
        self.now = now

    def collect(self) -> Iterator[Metric]:
        totals = sum_counters(w.counters for w in self.workers)
        yield from _ingest_metrics(totals)
        live = 0
        for w in self.workers:
            updated = as_utc(w.updated_at)
            if updated is not None and (self.now - updated).total_seconds() <= STALE_WORKER_S:
                live += 1
        g = GaugeMetricFamily("dcor_ingest_workers", "Ingest workers by liveness",
                              labels=["state"])
        g.add_metric(["live"], live)
        g.add_metric(["stale"], len(self.workers) - live)
        yield g
        yield from _device_metrics(self.devices)


def _ingest_metrics(totals: Mapping[str, Any]) -> Iterator[Metric]:
    for key, (name, text) in COUNTERS.items():
        c = CounterMetricFamily(name, text)
        c.add_metric([], _num(totals.get(key)) or 0.0)
        yield c
    for key, (name, text) in BY_REASON.items():
        c = CounterMetricFamily(name, text, labels=["reason"])
        reasons = totals.get(key)
        for reason, n in sorted((reasons or {}).items()) if isinstance(reasons, dict) else []:
            value = _num(n)
            if value is not None:
                c.add_metric([str(reason)], value)
        yield c
    for key, (name, text) in GAUGES.items():
        g = GaugeMetricFamily(name, text)
        g.add_metric([], _num(totals.get(key)) or 0.0)
        yield g


_DEVICE_GAUGES: Final = {
    "outbox_depth": ("dcor_device_outbox_depth", "Rows in the device's outbox"),
    "outbox_oldest_s": ("dcor_device_outbox_oldest_seconds", "Age of its oldest row"),
    "outbox_bytes": ("dcor_device_outbox_bytes", "Bytes in the device's outbox"),
}
_DEVICE_COUNTERS: Final = {
    "outbox_dropped": ("dcor_device_outbox_dropped", "Rows its full outbox dropped"),
    "reconnects": ("dcor_device_reconnects", "Its reconnections to the broker"),
}


def _device_metrics(devices: list[DeviceRecord]) -> Iterator[Metric]:
    """From each device's latest health (what it said last, not live)."""
    families: list[tuple[str, GaugeMetricFamily | CounterMetricFamily]] = [
        (k, GaugeMetricFamily(n, t, labels=["device"])) for k, (n, t) in _DEVICE_GAUGES.items()]
    families += [(k, CounterMetricFamily(n, t, labels=["device"]))
                 for k, (n, t) in _DEVICE_COUNTERS.items()]
    clock = GaugeMetricFamily("dcor_device_clock_suspect",
                              "1 when the hub set aside the device's points for its clock",
                              labels=["device"])
    for d in sorted(devices, key=lambda r: r.id):
        health = d.last_health or {}
        for key, fam in families:
            value = _num(health.get(key))
            if value is not None:
                fam.add_metric([d.id], value)
        if health:
            clock.add_metric([d.id], 1.0 if health.get("clock_suspect") else 0.0)
    for _, fam in families:
        yield fam
    yield clock


def render(workers: list[WorkerRecord], devices: list[DeviceRecord], now: datetime) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(workers, devices, now))
    return generate_latest(registry)


@bp.get("/metrics")
def metrics() -> Response:
    d = deps()
    body = render(load_worker_stats(d.registry), load_devices(d.registry), d.now())
    return Response(body, mimetype=None, headers={"Content-Type": CONTENT_TYPE_LATEST})
