"""The rule file reloads when it changes; a broken version keeps the rules loaded before."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from hub.alerts.rulefile import RuleFile
from hub.alerts.rules import RulesError, RuleSet
from tests.alerts.scenario import RULES_YAML


def write(path: Path, text: str, bump: int = 0) -> None:
    path.write_text(text)
    st = path.stat()
    # Editors can save twice within one mtime tick; move it on so the change is seen.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def test_packaged_defaults_without_a_path() -> None:
    rf = RuleFile(None)
    assert "device-offline" in rf.current().by_id
    assert rf.source == "(packaged defaults)"


def test_reload_on_change_and_keep_the_old_rules_when_broken(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "rules.yaml"
    write(path, RULES_YAML)
    seen: list[RuleSet] = []
    rf = RuleFile(path, on_change=seen.append)
    first = rf.current()
    assert set(first.by_id) == {"uplink", "offline", "cam", "hot", "jam"}
    assert rf.current() is first  # unchanged: the same object, no parsing

    write(path, RULES_YAML.replace("threshold: 80", "threshold: 75"), bump=1)
    second = rf.current()
    assert second.by_id["hot"].threshold == 75  # type: ignore[union-attr]
    assert seen == [second] and rf.stats.loads == 2

    broken = RULES_YAML.replace("threshold: 80", "threshold: hot")
    with caplog.at_level(logging.ERROR, logger="dcor.hub.alerts.rules"):
        write(path, broken, bump=2)
        assert rf.current() is second
        assert rf.current() is second
        write(path, broken + "\n", bump=3)  # another broken version: counted again
        assert rf.current() is second
    assert rf.stats.errors == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and "threshold" in errors[0].getMessage()
    assert "Keeping the rules loaded before" in errors[0].getMessage()

    path.unlink()
    assert rf.current() is second and rf.stats.errors == 3
    assert rf.current() is second and rf.stats.errors == 3  # reported once

    write(path, RULES_YAML.replace("for: 1m\n    clear: 30s", "for: 2m\n    clear: 30s"),
          bump=4)
    assert rf.current().by_id["offline"].for_ == 120
    assert rf.stats.loads == 3


def test_same_text_rewritten_is_not_reparsed(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    write(path, RULES_YAML)
    rf = RuleFile(path)
    first = rf.current()
    write(path, RULES_YAML, bump=5)
    assert rf.current() is first and rf.stats.loads == 1


def test_invalid_file_at_start_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_YAML.replace("desk: dishub", "desk: nowhere"))
    with pytest.raises(RulesError) as err:
        RuleFile(path)
    assert any(p.path.endswith("desk") and p.line > 1 for p in err.value.problems)
    with pytest.raises(RulesError, match="cannot read"):
        RuleFile(tmp_path / "missing.yaml")
