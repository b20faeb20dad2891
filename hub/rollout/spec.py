"""What an admin asks for when starting a rollout (pydantic, unknown keys refused), and
which devices that selects (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.rollout.render import DeviceInfo
from hub.rollout.waves import Thresholds, WaveSpecError, plan_waves


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Targets(_Model):
    """Devices, kelurahan, kecamatan (unioned), or everything; ``hardware`` narrows the
    selection to those classes (alone, it selects every device of them)."""

    all: bool = Field(False, title="Every enrolled device")
    devices: list[str] = Field(default_factory=list, title="Device ids")
    kelurahan: list[str] = Field(default_factory=list, title="Kelurahan names")
    kecamatan: list[str] = Field(default_factory=list, title="Kecamatan names")
    hardware: list[str] = Field(default_factory=list, title="Hardware classes")

    @model_validator(mode="after")
    def _something(self) -> Targets:
        if not (self.all or self.devices or self.kelurahan or self.kecamatan or self.hardware):
            raise ValueError("pick targets: devices, kelurahan, kecamatan, hardware or all")
        return self

    def select(self, devices: Iterable[DeviceInfo]) -> list[str]:
        picked = []
        only_hw = not (self.all or self.devices or self.kelurahan or self.kecamatan)
        for d in devices:
            chosen = only_hw or self.all or d.id in self.devices or \
                d.kelurahan in self.kelurahan or d.kecamatan in self.kecamatan
            if chosen and (not self.hardware or d.hardware in self.hardware):
                picked.append(d.id)
        return sorted(picked)


class WaveSpec(_Model):
    canary: int = Field(1, ge=0, le=1000, title="Canary devices (per hardware class)")
    percentages: list[float] = Field(default_factory=lambda: [100.0],
                                     title="Cumulative share of the targets after each wave")


class ThresholdSpec(_Model):
    max_failure_pct: float = Field(10.0, ge=0, le=100)
    max_failures: int | None = Field(None, ge=0)
    report_timeout_s: float = Field(300.0, gt=0, le=7 * 86400)
    bake_s: float = Field(60.0, ge=0, le=86400)
    health_check: bool = True
    fps_drop_pct: float = Field(50.0, gt=0, le=100)
    inference_rise_pct: float = Field(100.0, gt=0)

    def thresholds(self) -> Thresholds:
        return Thresholds(**self.model_dump())


class ApplyTiming(_Model):
    grace_s: float = Field(60.0, ge=1, le=3600, title="Box gives it back if not healthy by")
    settle_s: float = Field(10.0, ge=0, le=600, title="Healthy this long: the box keeps it")


class RolloutSpec(_Model):
    targets: Targets
    waves: WaveSpec = Field(default_factory=WaveSpec)  # type: ignore[arg-type]
    thresholds: ThresholdSpec = Field(default_factory=ThresholdSpec)  # type: ignore[arg-type]
    apply: ApplyTiming = Field(default_factory=ApplyTiming)  # type: ignore[arg-type]
    skip_offline: bool = Field(True, title="Leave out devices offline when their wave starts")
    note: str = Field("", max_length=300)

    @model_validator(mode="after")
    def _waves(self) -> RolloutSpec:
        try:
            plan_waves(["x"], self.waves.canary, self.waves.percentages)
        except WaveSpecError as exc:
            raise ValueError(str(exc)) from exc
        return self


def plan_by_class(devices: Iterable[DeviceInfo], spec: WaveSpec, salt: str) -> list[list[str]]:
    """Waves per hardware class, merged: wave i holds wave i of every class, so each class
    has its own canaries."""
    groups: dict[str, list[str]] = {}
    for d in devices:
        groups.setdefault(d.hardware, []).append(d.id)
    merged: list[list[str]] = []
    for hw in sorted(groups):
        for i, wave in enumerate(plan_waves(groups[hw], spec.canary, spec.percentages, salt)):
            while len(merged) <= i:
                merged.append([])
            merged[i].extend(wave)
    return [sorted(w) for w in merged if w]


def spec_json(spec: RolloutSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json")
