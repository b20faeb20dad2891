"""Alert rules: pydantic models of the admin-editable YAML rule file.

A rule file holds the desks alerts route to (id plus Indonesian and English names), defaults
(flap policy) and the rules. Each rule is one ``kind`` of a discriminated union; the kind fixes
what the rule's subject is (see ``SUBJECT_KIND``). Durations are human (``30s``, ``5m``) and
held as float seconds. ``load_rules`` / ``validate_rules_file`` report each error with its
YAML line; ``python -m hub.alerts.rules FILE`` prints them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from hub.alerts.durations import Duration
from hub.alerts.yamlpos import LineIndex, YamlError, load_yaml

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: Final[dict[str, int]] = {"info": 0, "warning": 1, "critical": 2}
CameraProblem = Literal["down", "no_frames", "frozen", "covered", "detector_stalled"]
# Numeric and boolean fields of the wire ``Health`` payload a rule may watch.
MetricField = Literal[
    "cpu_pct", "load1", "mem_pct", "mem_used_mb", "disk_pct", "disk_free_mb", "temp_c",
    "outbox_depth", "outbox_bytes", "outbox_oldest_s", "outbox_dropped", "reconnects",
    "uptime_s",
]
FlagField = Literal[
    "throttled_now", "throttled_ever", "undervoltage_now", "undervoltage_ever", "clock_synced"
]
RULE_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# Desk ids become MQTT topic levels (dcor/v1/_hub/alerts/<desk>), so keep them plain.
DESK_ID_PATTERN: Final = r"^[a-z][a-z0-9_]{1,31}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Desk(_Model):
    id: str = Field(pattern=DESK_ID_PATTERN, title="Desk id", description="e.g. dishub")
    name_id: str = Field(min_length=1, title="Name (Bahasa Indonesia)")
    name_en: str = Field(min_length=1, title="Name (English)")


class Title(_Model):
    id: str = Field(min_length=1, title="Title in Bahasa Indonesia")
    en: str = Field(min_length=1, title="Title in English")


class FlapPolicy(_Model):
    enabled: bool = Field(default=True, description="False: no flap detection for the rule")
    transitions: int = Field(default=6, ge=2, le=1000, description="Changes that mean flapping")
    window: Duration = Field(default=600.0, gt=0, description="Period transitions count over")


class GroupPolicy(_Model):
    by: Literal["kelurahan"] = Field(default="kelurahan", description="Roll-up level")
    min_members: int = Field(default=2, ge=2, le=10_000, description="Alerts that form a group")
    wait: Duration = Field(default=0.0, description="Hold single notifications for a group")


class EscalationStep(_Model):
    after: Duration = Field(gt=0, description="Time since first notified, unacknowledged")
    severity: Severity | None = Field(default=None, description="Raise the severity to this")
    desk: str | None = Field(default=None, pattern=DESK_ID_PATTERN, description="Also route here")

    @model_validator(mode="after")
    def _does_something(self) -> EscalationStep:
        if self.severity is None and self.desk is None:
            raise ValueError("an escalation step needs a severity, a desk or both")
        return self


class _RuleBase(_Model):
    id: str = Field(pattern=RULE_ID_PATTERN, title="Rule id", description="Stable; keys alerts")
    for_: Duration = Field(default=0.0, alias="for", description="Held this long: fires")
    clear: Duration = Field(default=0.0, description="Clear this long: resolves")
    severity: Severity = Field(default="warning", description="info, warning or critical")
    desk: str = Field(pattern=DESK_ID_PATTERN, description="Desk id the alert routes to")
    labels: dict[str, str] = Field(default_factory=dict, description="Free labels for silences")
    title: Title | None = Field(default=None, description="Overrides the catalog title")
    flap: FlapPolicy | None = Field(default=None, description="Overrides defaults.flap")
    group: GroupPolicy | None = Field(default=None, description="Group alerts of one kelurahan")
    inhibit: Literal["kelurahan", "device"] | None = Field(default=
        None, description="While active, silence other alerts of the same kelurahan / device"
    )
    escalation: list[EscalationStep] = Field(default_factory=list)
    enabled: bool = Field(default=True, description="False keeps the rule but evaluates nothing")


class DeviceOfflineRule(_RuleBase):
    kind: Literal["device_offline"]


class DeviceStaleRule(_RuleBase):
    kind: Literal["device_stale"]


class UplinkDownRule(_RuleBase):
    """All monitored devices of a kelurahan offline at once: its shared uplink is down."""

    kind: Literal["uplink_down"]
    min_devices: int = Field(default=2, ge=1, description="Fewer devices: not judged")


class CameraStateRule(_RuleBase):
    kind: Literal["camera_state"]
    states: list[CameraProblem] = Field(min_length=1, description="Camera states that alert")
    cameras: str = Field(default="*", description="Glob on camera ids")


class MetricRule(_RuleBase):
    kind: Literal["metric"]
    field: MetricField = Field(description="Health payload field")
    op: Literal[">", ">=", "<", "<="] = Field(default=">=", description="Compared how")
    threshold: float = Field(description="Value the field is compared with")


class FlagRule(_RuleBase):
    kind: Literal["flag"]
    field: FlagField = Field(description="Boolean health payload field")
    equals: bool = Field(default=True, description="The alerting value (clock_synced: false)")


class DetectionRule(_RuleBase):
    """Objects of some classes in a zone: ``aggregate`` of per-interval counts over ``window``."""

    kind: Literal["detection"]
    classes: list[str] = Field(min_length=1, description="Detector classes summed, e.g. person")
    zones: str = Field(default="*", description="Glob on zone ids")
    cameras: str = Field(default="*", description="Glob on camera ids")
    min_count: float = Field(gt=0, description="Alert when the aggregate is at least this")
    window: Duration = Field(default=10.0, gt=0, description="Older samples are ignored")
    aggregate: Literal["min", "mean", "max"] = Field(default=
        "mean", description="min: present throughout the window (a jam); mean: a crowd"
    )


Rule = Annotated[
    DeviceOfflineRule | DeviceStaleRule | UplinkDownRule | CameraStateRule | MetricRule
    | FlagRule | DetectionRule,
    Field(discriminator="kind"),
]
SUBJECT_KIND: Final[dict[str, str]] = {
    "device_offline": "device", "device_stale": "device", "uplink_down": "kelurahan",
    "camera_state": "camera", "metric": "device", "flag": "device", "detection": "zone",
}


class Defaults(_Model):
    flap: FlapPolicy = Field(default_factory=FlapPolicy, description="Flap policy")


class RuleSet(_Model):
    version: Literal[1] = 1
    desks: list[Desk] = Field(min_length=1, description="Desks of the room")
    defaults: Defaults = Field(default_factory=Defaults)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_check(self) -> RuleSet:
        problems = cross_check(self)
        if problems:
            summary = "; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems)
            raise PydanticCustomError(
                "rule_set", "{summary}", {"summary": summary, "problems": problems}
            )
        return self

    @cached_property
    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules if r.enabled}

    @cached_property
    def desk_by_id(self) -> dict[str, Desk]:
        return {d.id: d for d in self.desks}

    def flap_policy(self, rule: Rule) -> FlapPolicy | None:
        policy = rule.flap or self.defaults.flap
        return policy if policy.enabled else None


Problem = tuple[tuple[str | int, ...], str]


def cross_check(rs: RuleSet) -> list[Problem]:
    """Checks across fields: unique ids, known desks, options that fit the rule's subject."""
    out: list[Problem] = []
    desks = {d.id for d in rs.desks}
    if len(desks) != len(rs.desks):
        out.append((("desks",), "desk ids must be unique"))
    seen: set[str] = set()
    for i, rule in enumerate(rs.rules):
        at: tuple[str | int, ...] = ("rules", i)
        if rule.id in seen:
            out.append(((*at, "id"), f"rule id {rule.id!r} is used twice"))
        seen.add(rule.id)
        if rule.desk not in desks:
            out.append(((*at, "desk"), f"unknown desk {rule.desk!r}; known: {sorted(desks)}"))
        subject = SUBJECT_KIND[rule.kind]
        if rule.group and subject == "kelurahan":
            out.append(((*at, "group"), "a kelurahan rule cannot be grouped by kelurahan"))
        if rule.inhibit == "kelurahan" and subject != "kelurahan":
            out.append(((*at, "inhibit"), "inhibit: kelurahan needs a kelurahan rule"))
        if rule.inhibit == "device" and subject != "device":
            out.append(((*at, "inhibit"), "inhibit: device needs a device rule"))
        last = 0.0
        for j, step in enumerate(rule.escalation):
            if step.desk is not None and step.desk not in desks:
                out.append(((*at, "escalation", j, "desk"), f"unknown desk {step.desk!r}"))
            if step.after <= last:
                out.append(((*at, "escalation", j, "after"), "steps must come later and later"))
            last = step.after
    return out


# --- loading -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RuleProblem:
    line: int  # 1-based; 0 when the place is unknown
    path: str  # dotted location, e.g. rules.3.threshold
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.path or '(file)'}: {self.message}"


class RulesError(ValueError):
    """A rule file cannot be used; ``problems`` name the YAML line of each error."""

    def __init__(self, source: str, problems: Sequence[RuleProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        listed = "\n".join(f"  {source}:{p}" for p in self.problems)
        super().__init__(f"invalid alert rules in {source}:\n{listed}\nFix the lines above.")


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Validate rule-file text; raise ``RulesError`` listing every problem with its line."""
    try:
        data, index = load_yaml(text)
    except YamlError as exc:
        raise RulesError(source, [RuleProblem(exc.line, "", str(exc))]) from exc
    if not isinstance(data, dict):
        raise RulesError(source, [RuleProblem(1, "", "expected a mapping with desks and rules")])
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        raise RulesError(source, _problems(exc, index)) from exc


def _problems(exc: ValidationError, index: LineIndex) -> list[RuleProblem]:
    out: list[RuleProblem] = []
    for err in exc.errors():
        nested: Any = (err.get("ctx") or {}).get("problems")
        pairs = nested if err["type"] == "rule_set" and nested else [(err["loc"], err["msg"])]
        for loc, msg in pairs:
            # Drop the union tag pydantic inserts: rules.3.metric.threshold -> rules.3.threshold
            shown = loc[:2] + loc[3:] if _is_tagged(loc) else loc
            path = ".".join(str(p) for p in shown)
            out.append(RuleProblem(index.line_of(loc), path, msg))
    return sorted(out, key=lambda p: p.line)


def _is_tagged(loc: Sequence[Any]) -> bool:
    return len(loc) > 3 and loc[0] == "rules" and loc[2] in SUBJECT_KIND


def load_rules(path: str | Path) -> RuleSet:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(str(path), [RuleProblem(0, "", f"cannot read: {exc.strerror}")]) from exc
    return parse_rules(text, str(path))


def validate_rules_file(path: str | Path) -> list[RuleProblem]:
    """Every problem of a rule file, or an empty list when it is valid."""
    try:
        load_rules(path)
    except RulesError as exc:
        return exc.problems
    return []


def default_rules_text() -> str:
    return resources.files("hub.alerts").joinpath("default_rules.yaml").read_text("utf-8")


def default_rules() -> RuleSet:
    return parse_rules(default_rules_text(), "hub/alerts/default_rules.yaml")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hub.alerts.rules FILE...``: print each problem with its line; 1 if any."""
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths:
        print("usage: python -m hub.alerts.rules RULES.yaml...", file=sys.stderr)
        return 2
    bad = 0
    for path in paths:
        problems = validate_rules_file(path)
        for problem in problems:
            print(f"{path}:{problem}")
        bad += bool(problems)
        if not problems:
            print(f"{path}: ok")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
