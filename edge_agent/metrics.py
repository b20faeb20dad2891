"""The agent's ``/metrics`` (Prometheus text format, prometheus-client) on ``metrics_port``.

Figures are read live from the outbox and the uplink at scrape time; nothing is kept twice.
The server is prometheus-client's own small WSGI server in a named daemon thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge_agent.outbox import Outbox
from edge_agent.uplink import UplinkStats


class UplinkView(Protocol):
    stats: UplinkStats

    @property
    def connected(self) -> bool: ...


class AgentCollector(Collector):
    def __init__(self, outbox: Outbox, uplink: UplinkView) -> None:
        self.outbox = outbox
        self.uplink = uplink

    def collect(self) -> Iterator[Metric]:
        ob = self.outbox
        for name, text, value in (
            ("dcor_agent_outbox_depth", "Rows waiting for the hub's ack", ob.depth),
            ("dcor_agent_outbox_bytes", "Bytes held by the outbox", ob.size_bytes),
            ("dcor_agent_outbox_max_bytes", "The outbox's size cap", ob.max_bytes),
            ("dcor_agent_outbox_oldest_seconds", "Age of the oldest row", ob.oldest_age_s()),
            ("dcor_agent_last_seq", "Newest seq produced", ob.last_seq()),
            ("dcor_agent_uplink_connected", "1 while connected to the broker",
             1 if self.uplink.connected else 0),
        ):
            g = GaugeMetricFamily(name, text)
            g.add_metric([], float(value))
            yield g
        dropped = CounterMetricFamily("dcor_agent_outbox_dropped",
                                      "Rows the full outbox dropped, by priority class",
                                      labels=["class"])
        for cls, n in ob.dropped().items():
            dropped.add_metric([cls], float(n))
        yield dropped
        s = self.uplink.stats
        for name, text, value in (
            ("dcor_agent_uplink_published", "Messages handed to MQTT", s.published),
            ("dcor_agent_uplink_acked_rows", "Rows the hub said it stored", s.acked_rows),
            ("dcor_agent_uplink_resent", "Rows sent again (no ack in time)", s.resent),
            ("dcor_agent_uplink_reconnects", "Reconnections to the broker", s.reconnects),
            ("dcor_agent_uplink_puback_failures", "PUBACKs with a failure reason code",
             s.puback_failures),
        ):
            c = CounterMetricFamily(name, text)
            c.add_metric([], float(value))
            yield c


@dataclass
class MetricsServer:
    server: WSGIServer

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_metrics_server(outbox: Outbox, uplink: UplinkView, port: int,
                         addr: str = "0.0.0.0") -> MetricsServer:
    """Serve ``/metrics`` on ``addr:port`` (port 0 picks a free one; see ``.port``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(outbox, uplink))
    server, thread = start_http_server(port, addr=addr, registry=registry)
    thread.name = "dcor.metrics"
    return MetricsServer(server)
