"""An in-memory StageHost: records reconfigurations and reports; its probe is settable."""

from __future__ import annotations

import threading
from typing import Any

from edge_agent.config import AgentConfig
from edge_agent.remoteconf.gate import Probe


class FakeHost:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.applied: list[AgentConfig] = []
        self.reports: list[dict[str, Any]] = []
        self.probe_value = Probe(uplink_connected=True)
        self.fail_next = False
        self._cv = threading.Condition()

    def reconfigure(self, cfg: AgentConfig) -> list[str]:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("camera driver exploded")
        self.applied.append(cfg)
        self.cfg = cfg
        return ["health"]

    def probe(self) -> Probe:
        return self.probe_value

    def report_config(self, fields: dict[str, Any]) -> None:
        with self._cv:
            self.reports.append(fields)
            self._cv.notify_all()

    def wait_reports(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        with self._cv:
            self._cv.wait_for(lambda: len(self.reports) >= n, timeout)
            assert len(self.reports) >= n, f"reports: {self.reports}"
            return list(self.reports)
