"""Every fault scenario at its quick (CI) length, on a small fleet, judged by the oracle.

Real processes throughout: mosquitto, influxd, ``dcor-hub ingest``, agent hosts running the
real agent code, behind the fault proxy and the InfluxDB front. The fleet is small (4 agents
at 5 readings/s) so the whole set stays a few minutes on two cores; ``python -m bench.faults``
runs the same scenarios with 50 agents at 10/s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import base_spec, run_scenario
from bench.priority import run_priority
from bench.scenarios import SCENARIOS, Scenario

pytestmark = [pytest.mark.integration, pytest.mark.faults]

# The ones whose quick fault lasts 25 s or more.
_SLOW = {s.name for s in SCENARIOS if s.duration("quick") >= 25}


def _param(s: Scenario) -> object:
    marks = [pytest.mark.slow] if s.name in _SLOW else []
    return pytest.param(s, id=s.name, marks=marks)


def _explain(result: dict[str, object]) -> str:
    keep = ("checks", "produced", "lost", "lost_devices", "evicted", "duplicates", "crashed",
            "integrity_failures", "drained", "hub", "fault_s", "wall_s")
    return repr({k: result.get(k) for k in keep})


@pytest.mark.parametrize("scenario", [_param(s) for s in SCENARIOS])
def test_scenario_quick(scenario: Scenario, tmp_path: Path) -> None:
    spec = base_spec("quick", agents=4, rate=5.0, hosts=2)
    result = run_scenario(scenario, "quick", spec, tmp_path)
    assert result["ok"], _explain(result)
    assert result["lost"] == 0
    assert result["crashes"] == 0
    assert result["duplicate_points"] == 0  # same seq, different point: never
    # Small fleet, so the share per second is coarse; the benchmark checks <= 20% at 50.
    assert result["duplicates_ratio"] <= 0.05, _explain(result)


def test_alarm_overtakes_a_backlog_on_a_slow_link(tmp_path: Path) -> None:
    result = run_priority(tmp_path / "priority", "quick")
    assert result["ok"], repr({k: result.get(k) for k in (
        "checks", "alarm_latency_s", "lost", "backlog_left_when_measured", "drained")})
