"""Which of the agent's stages a configuration change touches (pure).

The agent restarts only those: a new health interval restarts the health loop, a changed
camera restarts that camera's pipeline, a changed detector (or model file) every pipeline,
broker or outbox tuning the uplink, a new metrics port the metrics server. Labels (profile,
hardware) restart nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge_agent.config import AgentConfig


@dataclass
class StageChanges:
    health: bool = False
    uplink: bool = False
    metrics: bool = False
    detector: bool = False
    cameras_start: list[str] = field(default_factory=list)  # new or changed: (re)start
    cameras_stop: list[str] = field(default_factory=list)  # removed or changed: stop

    def names(self) -> list[str]:
        out = [n for n in ("uplink", "health", "metrics", "detector") if getattr(self, n)]
        restarted = sorted(set(self.cameras_start) | set(self.cameras_stop))
        return out + [f"camera:{c}" for c in restarted]

    def any(self) -> bool:
        return bool(self.names())


def _dump(obj: Any) -> Any:
    return obj.model_dump(mode="json") if obj is not None else None


def diff_stages(old: AgentConfig, new: AgentConfig) -> StageChanges:
    ch = StageChanges(
        health=_dump(old.health) != _dump(new.health),
        uplink=_dump(old.mqtt) != _dump(new.mqtt) or _dump(old.outbox) != _dump(new.outbox),
        metrics=old.metrics_port != new.metrics_port,
        detector=_dump(old.detector) != _dump(new.detector),
    )
    before = {c.id: _dump(c) for c in old.cameras}
    after = {c.id: _dump(c) for c in new.cameras}
    if ch.detector or old.data_dir != new.data_dir:
        ch.cameras_stop = sorted(before)
        ch.cameras_start = sorted(after)
        return ch
    ch.cameras_stop = sorted(c for c in before if before[c] != after.get(c))
    ch.cameras_start = sorted(c for c in after if after[c] != before.get(c))
    return ch
