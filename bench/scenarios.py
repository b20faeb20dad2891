"""The fault scenarios, each in three lengths: quick (CI), compressed (benchmark), full.

A scenario adjusts the lab's spec, then injects its fault while the fleet produces; the runner
(``bench.faults``) quiesces the lab and asks the oracle. Durations are the fault's own length
in seconds for each of the three lengths.
"""

from __future__ import annotations

import contextlib
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bench.faultinflux import HttpFault
from bench.faultlab import Lab, LabSpec, outbox_figures
from bench.faultproxy import Fault
from edge_agent.config import MqttConfig
from hub.localservices import wait_until

LENGTHS = ("quick", "compressed", "full")
DAY_MS = 86_400_000


@dataclass
class Context:
    """What a scenario hands back to the runner besides the lab's own figures."""

    refused_by_influx: dict[str, set[int]] = field(default_factory=dict)
    extra_measurements: tuple[str, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    durations: tuple[float, float, float]
    run: Callable[[Lab, float, Context, random.Random], None]
    spec: Callable[[LabSpec], LabSpec] = lambda s: s
    in_process: bool = False  # runs its own agent in this process (no agent hosts)

    def duration(self, length: str) -> float:
        return self.durations[LENGTHS.index(length)]


def _sleep(seconds: float) -> None:
    time.sleep(max(0.0, seconds))


# --- broker ---------------------------------------------------------------------------------

def broker_sigterm(lab: Lab, d: float, ctx: Context, rnd: random.Random) -> None:
    lab.broker.stop()
    _sleep(d)
    lab.broker.restart()


def broker_sigkill_x3(lab: Lab, d: float, ctx: Context, rnd: random.Random) -> None:
    for _ in range(3):
        lab.broker.kill()
        _sleep(d / 6)
        lab.broker.restart()
        _sleep(d / 6)


# --- uplink ---------------------------------------------------------------------------------

def _proxy(lab: Lab) -> Any:
    assert lab.proxy is not None
    return lab.proxy


def halfopen(lab: Lab, d: float, ctx: Context, rnd: random.Random) -> None:
    _proxy(lab).blackhole()
    _sleep(d)
    _proxy(lab).pass_()


def flapping(lab: Lab, d: float, ctx: Context, rnd: random.Random) -> None:
    up = (2.0, 8.0) if d < 90 else (5.0, 30.0)
    down = (1.0, 5.0) if d < 90 else (2.0, 15.0)
    _proxy(lab).set(Fault.flap(up, down))
    _sleep(d)
    ctx.figures["flaps"] = _proxy(lab).stats.flaps
    _proxy(lab).pass_()


def slow_village_link(lab: Lab, d: float, ctx: Context, rnd: random.Random) -> None:
    _proxy(lab).set(Fault.slow(1.5, 0.5, 4096))
    _sleep(d)
    _proxy(lab).pass_()


# --- hub ------------------------------------------------------------------------------------

def hub_sigstop(lab: Lab, d: float, ctx: Context, rnd: random.Random) -> None:
    lab.signal_hub(signal.SIGSTOP)
    _sleep(d)
    lab.signal_hub(signal.SIGCONT)


def hub_sigkill_x3(lab: Lab, d: float, ctx: Context, rnd: random.Random) -> None:
    for _ in range(3):
        _sleep(rnd.uniform(0.5, 1.0) * d / 4)
        lab.signal_hub(signal.SIGKILL)
        _sleep(rnd.uniform(0.5, 3.0))
        lab.start_hub()
    _sleep(d / 8)


# --- InfluxDB -------------------------------------------------------------------------------

def influx_down(lab: Lab, d: float, ctx: Context, rnd: random.Random) -> None:
    lab.influxd.stop()
    _sleep(d)
    lab.influxd.restart()


def influx_errors(lab: Lab, d: float, ctx: Context, rnd: random.Random) -> None:
    """500, 503 + Retry-After, 429, one bad line in a batch, 413, a hanging server."""
    front = lab.front
    assert front is not None
    victim = lab.devices[0]

    def poison() -> HttpFault:
        # A reading the victim produces about a second into this phase.
        _, last, _ = outbox_figures(lab.root / "agents" / victim / "outbox.sqlite")
        bad = last + max(2, int(lab.spec.rate))
        ctx.refused_by_influx = {victim: {bad}}
        return HttpFault("poison", needles=(b"health,", f"device={victim},".encode(),
                                            f"seq={bad}i".encode()))

    phases: list[Callable[[], HttpFault]] = [
        lambda: HttpFault("status", code=500),
        lambda: HttpFault("status", code=503, retry_after_s=2),
        lambda: HttpFault("status", code=429, retry_after_s=1),
        poison,
        lambda: HttpFault("max_body", max_bytes=8 * 1024),
        lambda: HttpFault("hang"),
    ]
    for make in phases:
        front.set(make())
        _sleep(d / len(phases))
        if make is poison and front.stats.refused_lines:
            # Keep refusing until the hub has isolated the line: on a loaded machine its
            # bisection can time out and spool the half, which would then be replayed
            # after this phase (stored after all, nothing isolated, nothing learned).
            with contextlib.suppress(TimeoutError):  # the check below says so if not
                wait_until(lambda: lab.hub_counters().get("influx_refused_lines", 0) >= 1,
                           30.0, interval=0.5)
        front.set(HttpFault())
        _sleep(min(2.0, d / 12))
    ctx.figures["influx_faulted_writes"] = front.stats.faulted
    ctx.figures["influx_refused_lines_injected"] = front.stats.refused_lines


# --- agents ---------------------------------------------------------------------------------

def agent_restart_spec(s: LabSpec) -> LabSpec:
    # A restarted agent waits its first-connect spread as a box does after boot: that is
    # what keeps the share of the fleet reconnecting in one second down.
    spread = MqttConfig.model_fields["first_connect_spread"].default
    return replace(s, first_connect_spread_s=float(spread))


def agent_sigkill(lab: Lab, d: float, ctx: Context, rnd: random.Random) -> None:
    kills = 20 if d >= 60 else 8
    for _ in range(kills):
        _sleep(rnd.uniform(0.2, 1.8) * d / kills)
        host = rnd.choice(lab.hosts)
        lab.kill_host(host)
        _sleep(rnd.uniform(0.0, 1.0))
        lab.start_host(host)
    ctx.figures["kills"] = kills


def outbox_cap_spec(s: LabSpec) -> LabSpec:
    # The smallest cap the config allows (64 KiB, ~240 readings) and at least 10 readings/s,
    # so the offline period overflows it even on the test suite's small fleet.
    return replace(s, outbox_max_bytes=64 * 1024, alarm_every_s=1.0, rate=max(s.rate, 10.0))


def outbox_cap(lab: Lab, d: float, ctx: Context, rnd: random.Random) -> None:
    _proxy(lab).reset()  # the uplink is gone: nothing leaves, the outboxes fill to the cap
    _sleep(d)
    _proxy(lab).pass_()
    ctx.checks["evicted_some"] = True  # filled in by the runner from the oracle


def clock_spec(s: LabSpec) -> LabSpec:
    now_ms = int(time.time() * 1000)
    return replace(s, clock_offsets_ms={0: -(now_ms - DAY_MS), 1: 2 * DAY_MS})


def clock_wrong(lab: Lab, d: float, ctx: Context, rnd: random.Random) -> None:
    ctx.extra_measurements = ("quarantine",)
    _sleep(d)
    ctx.figures["wrong_clock_devices"] = lab.devices[:2]


SCENARIOS: list[Scenario] = [
    Scenario("broker_sigterm_60s", (15, 60, 60), broker_sigterm),
    Scenario("broker_sigkill_x3", (18, 60, 90), broker_sigkill_x3),
    Scenario("uplink_half_open", (25, 120, 120), halfopen),
    Scenario("uplink_flapping", (30, 120, 180), flapping),
    Scenario("slow_village_link", (20, 90, 180), slow_village_link),
    Scenario("hub_sigstop", (20, 120, 120), hub_sigstop),
    Scenario("hub_sigkill_x3", (16, 60, 90), hub_sigkill_x3),
    Scenario("influx_down", (25, 240, 240), influx_down),
    Scenario("influx_errors", (30, 120, 240), influx_errors),
    Scenario("agent_sigkill", (20, 90, 180), agent_sigkill, agent_restart_spec),
    Scenario("outbox_cap_offline", (40, 60, 120), outbox_cap, outbox_cap_spec),
    Scenario("agent_clock_wrong", (10, 30, 60), clock_wrong, clock_spec),
]


def by_name(name: str) -> Scenario:
    for s in SCENARIOS:
        if s.name == name:
            return s
    raise KeyError(f"no scenario {name!r}; known: {', '.join(s.name for s in SCENARIOS)}")
