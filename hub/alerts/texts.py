"""Notification texts in Bahasa Indonesia (first) and English. A plain catalog for now.

Times are shown in WIB (UTC+7, no daylight saving, so a fixed offset is exact).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Final

from hub.alerts.model import Notification
from hub.alerts.rules import SUBJECT_KIND, CameraStateRule, FlagRule, MetricRule, Rule

WIB: Final = timezone(timedelta(hours=7), "WIB")
LANGS: Final = ("id", "en")

SEVERITY: Final = {
    "info": {"id": "Info", "en": "Info"},
    "warning": {"id": "Peringatan", "en": "Warning"},
    "critical": {"id": "Kritis", "en": "Critical"},
}
KIND_TITLES: Final = {
    "device_offline": {"id": "Perangkat offline", "en": "Device offline"},
    "device_stale": {"id": "Perangkat berhenti melapor", "en": "Device stopped reporting"},
    "uplink_down": {"id": "Jaringan kelurahan terputus", "en": "Kelurahan uplink down"},
    "camera_state": {"id": "Kamera bermasalah", "en": "Camera problem"},
    "metric": {"id": "Nilai di luar batas", "en": "Value out of range"},
    "flag": {"id": "Kondisi perangkat", "en": "Device condition"},
    "detection": {"id": "Deteksi melewati ambang", "en": "Detections over threshold"},
    "unknown": {"id": "Peringatan", "en": "Alert"},
}
CAMERA_STATES: Final = {
    "down": {"id": "mati", "en": "down"},
    "no_frames": {"id": "tidak ada gambar", "en": "no frames"},
    "frozen": {"id": "gambar beku", "en": "frozen image"},
    "covered": {"id": "lensa tertutup", "en": "covered"},
    "detector_stalled": {"id": "detektor macet", "en": "detector stalled"},
}
METRICS: Final = {
    "temp_c": {"id": "Suhu perangkat tinggi", "en": "Box temperature high"},
    "disk_pct": {"id": "Disk hampir penuh", "en": "Disk almost full"},
    "outbox_oldest_s": {"id": "Antrean kirim tertahan", "en": "Outbox backlog growing"},
    "cpu_pct": {"id": "Beban CPU tinggi", "en": "CPU load high"},
    "mem_pct": {"id": "Memori hampir penuh", "en": "Memory almost full"},
}
FLAGS: Final = {
    ("throttled_now", True): {"id": "CPU diperlambat (throttling)", "en": "CPU throttled"},
    ("undervoltage_now", True): {"id": "Tegangan listrik kurang", "en": "Undervoltage"},
    ("clock_synced", False): {"id": "Jam perangkat tidak sinkron", "en": "Clock not synced"},
}
TEMPLATES: Final = {
    "firing": {
        "id": "{sev}: {title} — {where}, sejak {since} WIB{value}",
        "en": "{sev}: {title} — {where}, since {since} WIB{value}",
    },
    "flapping": {
        "id": "{sev}: {title} — {where} berulang kali naik-turun (flapping) sejak {since} WIB",
        "en": "{sev}: {title} — {where} keeps flapping since {since} WIB",
    },
    "escalated": {
        "id": "ESKALASI {sev}: {title} — {where}, belum ditanggapi sejak {since} WIB",
        "en": "ESCALATED {sev}: {title} — {where}, not acknowledged since {since} WIB",
    },
    "resolved": {
        "id": "Pulih: {title} — {where}, {at} WIB",
        "en": "Resolved: {title} — {where}, {at} WIB",
    },
}


def wib(at: datetime) -> str:
    return at.astimezone(WIB).strftime("%Y-%m-%d %H:%M:%S")


def title(n: Notification, rule: Rule | None, lang: str) -> str:
    if rule is not None and rule.title is not None:
        return rule.title.id if lang == "id" else rule.title.en
    if isinstance(rule, MetricRule) and rule.field in METRICS:
        return METRICS[rule.field][lang]
    if isinstance(rule, FlagRule) and (rule.field, rule.equals) in FLAGS:
        return FLAGS[(rule.field, rule.equals)][lang]
    base = KIND_TITLES.get(n.rule_kind, KIND_TITLES["unknown"])[lang]
    if isinstance(rule, CameraStateRule) and n.detail in CAMERA_STATES:
        return f"{base} ({CAMERA_STATES[n.detail][lang]})"
    return base


def where(n: Notification, lang: str) -> str:
    s = n.subject
    kel = f"Kel. {s.kelurahan}, Kec. {s.kecamatan}" if lang == "id" else (
        f"{s.kelurahan}, {s.kecamatan}")
    if s.kind == "kelurahan":
        if n.members:
            cams = SUBJECT_KIND.get(n.rule_kind) == "camera"
            noun = ("kamera" if cams else "perangkat") if lang == "id" else (
                "cameras" if cams else "devices")
            return f"{kel}: {n.members} {noun}"
        return kel
    if s.kind == "device":
        return f"perangkat {s.device} ({kel})" if lang == "id" else f"device {s.device} ({kel})"
    if s.kind == "camera":
        return (f"kamera {s.camera} di {s.device} ({kel})" if lang == "id"
                else f"camera {s.camera} on {s.device} ({kel})")
    return (f"zona {s.zone}, kamera {s.camera} ({kel})" if lang == "id"
            else f"zone {s.zone}, camera {s.camera} ({kel})")


def render(n: Notification, lang: str, rule: Rule | None = None) -> str:
    """One line for the desk in ``lang`` ('id' or 'en')."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; use one of {LANGS}")
    value = ""
    if n.value is not None and n.rule_kind in ("metric", "detection"):
        value = f" (nilai {n.value:g})" if lang == "id" else f" (value {n.value:g})"
    return TEMPLATES[n.kind][lang].format(
        sev=SEVERITY.get(n.severity, SEVERITY["warning"])[lang], title=title(n, rule, lang),
        where=where(n, lang), since=wib(n.since), at=wib(n.at), value=value,
    )


def render_all(n: Notification, rule: Rule | None = None) -> dict[str, str]:
    return {lang: render(n, lang, rule) for lang in LANGS}
