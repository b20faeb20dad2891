"""Table-driven lifecycle scenarios, each also run with a hub restart before every step.

A restart throws the engine away and loads the state saved in a real SQLite registry; the
notifications and the stored alerts must come out exactly as without a restart: none lost,
none twice. Every step is also evaluated twice (see ``Runner.step``): no new notifications.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.alerts.model import Silence
from tests.alerts.scenario import Runner, Step, cam, dev, kel, t, zone

A, B, C = dev("dev-a"), dev("dev-b"), dev("dev-c")
D = dev("dev-d", kelurahan="Kemiri Muka")
KEL = kel().key


def _silence(start: float, end: float, *matchers: tuple[str, str]) -> Silence:
    return Silence("s1", tuple(matchers), "maintenance", "admin", t(start), t(end))


SCENARIOS: dict[str, list[Step]] = {
    "fire-then-resolve": [
        Step(0, [(A, "hot", True)]),
        Step(30, [(A, "hot", True)]),
        Step(60, [(A, "hot", True)], ["firing hot device:dev-a"]),
        Step(100, [(A, "hot", False)]),
        Step(150, [(A, "hot", False)]),
        Step(160, [(A, "hot", False)], ["resolved hot device:dev-a"]),
    ],
    "pending-cancelled": [
        Step(0, [(A, "hot", True)]),
        Step(30, [(A, "hot", False)]),
        Step(100, [(A, "hot", True)]),
        Step(160, [], ["firing hot device:dev-a"]),
    ],
    "reoccurrence": [
        Step(0, [(A, "hot", True)]),
        Step(60, [], ["firing hot device:dev-a"]),
        Step(100, [(A, "hot", False)]),
        Step(160, [], ["resolved hot device:dev-a"]),
        Step(300, [(A, "hot", True)]),
        Step(360, [], ["firing hot device:dev-a"]),
    ],
    "flapping": [
        Step(0, [(A, "hot", True)]),
        Step(20, [(A, "hot", False)]),
        Step(40, [(A, "hot", True)]),
        Step(60, [(A, "hot", False)], ["flapping hot device:dev-a"]),
        Step(80, [(A, "hot", True)]),
        Step(100, [(A, "hot", False)]),
        Step(120, [(A, "hot", True)]),
        Step(140, [(A, "hot", False)]),
        Step(400, [(A, "hot", False)]),
        Step(700, [(A, "hot", False)]),  # two transitions still inside the 10 min window
        Step(730, [(A, "hot", False)], ["resolved hot device:dev-a"]),
    ],
    "escalation": [
        Step(0, [(A, "offline", True)]),
        Step(60, [], ["firing offline device:dev-a"]),
        Step(359, []),
        Step(360, [], ["escalated:1 offline device:dev-a"]),
        Step(660, [], ["escalated:2 offline device:dev-a"]),
        Step(700, [(A, "offline", False)]),
        Step(730, [], ["resolved offline device:dev-a"]),
    ],
    "acknowledged-no-escalation": [
        Step(0, [(A, "offline", True)]),
        Step(60, [], ["firing offline device:dev-a"]),
        Step(120, ack=(A, "offline")),
        Step(400, []),
        Step(700, [(A, "offline", False)]),
        Step(730, [], ["resolved offline device:dev-a"]),
    ],
    "device-inhibits-camera": [
        Step(0, [(A, "offline", True), (cam("dev-a"), "cam", True)]),
        Step(30, []),
        Step(60, [], ["firing offline device:dev-a"]),
        Step(200, [(A, "offline", False), (cam("dev-a"), "cam", False)]),
        Step(230, [], ["resolved offline device:dev-a"]),
    ],
    "inhibitor-recovers-first": [
        Step(0, [(A, "offline", True), (cam("dev-a"), "cam", True)]),
        Step(30, []),
        Step(40, [(A, "offline", False)], ["firing cam camera:dev-a/cam1"]),
        Step(100, [(cam("dev-a"), "cam", False)]),
        Step(130, [], ["resolved cam camera:dev-a/cam1"]),
    ],
    "uplink-inhibits-kelurahan": [
        Step(0, [(kel(), "uplink", True), (A, "offline", True), (B, "offline", True),
                 (cam("dev-a"), "cam", True)]),
        Step(30, [], [f"firing uplink {KEL}"]),
        Step(60, []),
        Step(300, [(kel(), "uplink", False), (A, "offline", False), (B, "offline", False),
                   (cam("dev-a"), "cam", False)]),
        Step(330, [], [f"resolved uplink {KEL}"]),
    ],
    "group-per-kelurahan": [
        Step(0, [(A, "offline", True), (D, "offline", True)]),
        Step(5, [(B, "offline", True)]),
        Step(10, [(C, "offline", True)]),
        Step(60, [], [f"firing offline {KEL}", "firing offline device:dev-d"]),
        Step(65, []),
        Step(70, []),
        Step(200, [(A, "offline", False), (B, "offline", False), (C, "offline", False),
                   (D, "offline", False)]),
        Step(230, [], [f"resolved offline {KEL}", "resolved offline device:dev-d"]),
    ],
    "group-wait": [
        Step(0, [(zone("dev-a", "z1"), "jam", True),
                 (zone("dev-c", "z3", kelurahan="Tanah Baru"), "jam", True)]),
        Step(30, []),
        Step(40, [(zone("dev-b", "z2"), "jam", True)], [f"firing jam {KEL}"]),
        Step(50, [], ["firing jam zone:dev-c/cam1/z3"]),
        Step(80, []),
    ],
    "silence-expires": [
        Step(0, [(A, "hot", True)], silence=_silence(0, 120, ("rule", "hot"),
                                                     ("device", "dev-a"))),
        Step(60, []),
        Step(119, []),
        Step(120, [], ["firing hot device:dev-a"]),
        Step(200, [(A, "hot", False)]),
        Step(260, [], ["resolved hot device:dev-a"]),
    ],
    "silence-scheduled-ahead": [
        Step(0, [(A, "hot", True)], silence=_silence(50, 200, ("severity", "warning"))),
        Step(30, []),
        Step(60, []),
        Step(200, [], ["firing hot device:dev-a"]),
    ],
    "silenced-throughout": [
        Step(0, [(A, "hot", True)], silence=_silence(0, 1000, ("kecamatan", "Beji"),
                                                     ("area", "hard*"))),
        Step(60, []),
        Step(100, [(A, "hot", False)]),
        Step(160, []),
    ],
    "resolve-told-while-silenced": [
        Step(0, [(A, "hot", True)]),
        Step(60, [], ["firing hot device:dev-a"]),
        Step(70, silence=_silence(70, 1000, ("desk", "ops"))),
        Step(100, [(A, "hot", False)]),
        Step(160, [], ["resolved hot device:dev-a"]),
    ],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_with_a_restart_before_every_step(name: str, tmp_path: Path) -> None:
    steps = SCENARIOS[name]
    expected = [sorted(s.expect) for s in steps]
    base = Runner(tmp_path / "base.sqlite")
    try:
        assert base.run(steps) == expected
        rows, outbox = base.rows(), base.outbox()
    finally:
        base.close()
    assert len(outbox) == sum(len(e) for e in expected)
    for restart in range(1, len(steps)):
        runner = Runner(tmp_path / f"restart{restart}.sqlite")
        try:
            assert runner.run(steps, restart_at=restart) == expected, f"restart at {restart}"
            assert runner.rows() == rows, f"stored alerts differ after restart at {restart}"
            assert runner.outbox() == outbox
        finally:
            runner.close()
