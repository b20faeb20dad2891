"""Rule files: human durations, the default file, and errors that name the YAML line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.alerts.durations import format_duration, parse_duration
from hub.alerts.rules import (
    MetricRule,
    RulesError,
    default_rules,
    default_rules_text,
    main,
    parse_rules,
    validate_rules_file,
)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("500ms", 0.5), ("2d", 172800.0),
    ("1.5m", 90.0), (" 10S ", 10.0), ("0", 0.0), (45, 45.0), (2.5, 2.5), ("15", 15.0),
])
def test_durations_read(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5x", "m5", "5 m", "-3s", -1, True, None, "1h-5m", [1]])
def test_bad_durations_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (90, "1m30s"), (3600, "1h"),
                                               (86461, "1d1m1s"), (0.5, "0.5s")])
def test_durations_format_back(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_default_rules_are_valid_and_cover_every_kind() -> None:
    rules = default_rules()
    kinds = {r.kind for r in rules.rules}
    assert kinds == {"device_offline", "device_stale", "uplink_down", "camera_state", "metric",
                     "flag", "detection"}
    desks = {d.id for d in rules.desks}
    assert {"kominfo", "dishub", "damkar", "dinkes", "satpol_pp", "dukcapil"} <= desks
    assert all(d.name_id and d.name_en for d in rules.desks)
    hot = rules.by_id["box-hot"]
    assert isinstance(hot, MetricRule) and hot.for_ == 120.0 and hot.clear == 300.0


def _broken(old: str, new: str) -> str:
    text = default_rules_text()
    assert old in text
    return text.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(("old", "new", "path", "words", "needle", "nth"), [
    ("threshold: 80", "threshold: hot", "rules.5.threshold", "valid number",
     "threshold: hot", 0),
    ("    for: 2m\n    clear: 5m", "    for: 2x\n    clear: 5m", "rules.5.for", "duration",
     "for: 2x", 0),
    ("field: temp_c", "field: temperature", "rules.5.field", "temp_c", "field: temperature", 0),
    ("severity: warning\n    desk: dishub", "severity: loud\n    desk: dishub",
     "rules.12.severity", "critical", "loud", 0),
    ("    equals: true\n    for: 5m", "    equals: true\n    colour: red\n    for: 5m",
     "rules.6.colour", "not permitted", "colour", 0),
    ("desk: dishub\n    title", "desk: traffic\n    title", "rules.12.desk", "unknown desk",
     "desk: traffic", 0),
    ("- id: device-stale", "- id: device-offline", "rules.2.id", "used twice",
     "- id: device-offline", 1),
    ("{after: 30m, severity: critical}\n\n  - id: device-stale",
     "{after: 30m, severity: critical}\n      - {after: 10m, desk: dinkes}\n\n"
     "  - id: device-stale", "rules.1.escalation.1.after", "later", "desk: dinkes", 0),
])
def test_errors_name_the_yaml_line(
    old: str, new: str, path: str, words: str, needle: str, nth: int
) -> None:
    text = _broken(old, new)
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "rules.yaml")
    problem = next(p for p in caught.value.problems if p.path == path)
    assert words in problem.message
    wanted = [i for i, line in enumerate(text.splitlines(), 1) if needle in line][nth]
    assert problem.line == wanted, str(caught.value)
    assert f"rules.yaml:line {wanted}: {path}" in str(caught.value)


def test_not_yaml_and_duplicate_keys_are_located() -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules("version: 1\ndesks: [\n", "x.yaml")
    assert caught.value.problems[0].line >= 2
    with pytest.raises(RulesError) as caught:
        parse_rules("version: 1\ndesks: []\nversion: 1\n", "x.yaml")
    assert caught.value.problems[0].line == 3 and "twice" in caught.value.problems[0].message


def test_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(default_rules_text(), encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(_broken("threshold: 80", "threshold: hot"), encoding="utf-8")
    assert validate_rules_file(good) == []
    assert main([str(good)]) == 0
    assert main([str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{good}: ok" in out
    assert f"{bad}:line {_line_of(bad.read_text(), 'threshold: hot')}: rules.5.threshold" in out
    assert main([str(tmp_path / "missing.yaml")]) == 1


def test_escalation_step_must_do_something_and_rules_can_be_disabled() -> None:
    base = "version: 1\ndesks: [{id: ops, name_id: a, name_en: b}]\nrules:\n"
    with pytest.raises(RulesError, match="severity, a desk or both"):
        parse_rules(base + "  - {id: x, kind: device_offline, desk: ops, "
                    "escalation: [{after: 1m}]}\n")
    rules = parse_rules(base + "  - {id: x, kind: device_offline, desk: ops, enabled: false}\n")
    assert rules.by_id == {}
