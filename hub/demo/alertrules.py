"""The demo's alert rules: the packaged defaults, with the crowd rule scaled to the demo's
street video (a handful of people on the path, not a crowd of twenty), so the room sees a
detection alert within a minute. Written as a file the visitor can edit while the demo runs:
``dcor-hub alerts`` reloads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hub.alerts.rules import default_rules_text, parse_rules

DEMO_CROWD = {"min_count": 4, "window": "15s", "for": "10s", "clear": "30s"}


def demo_rules_text() -> str:
    data: dict[str, Any] = yaml.safe_load(default_rules_text())
    for rule in data["rules"]:
        if rule["id"] == "crowd":
            rule.update(DEMO_CROWD)
    text = ("# The demo's alert rules (the packaged defaults, crowd scaled to the demo video).\n"
            "# Edit and save: the running evaluator reloads this file.\n"
            + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    parse_rules(text, "demo rules")  # fails here, not in the evaluator, if it drifts
    return text


def write_demo_rules(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(demo_rules_text(), encoding="utf-8")
    return path
