"""edge_agent.config + yamlconf: strict model, errors naming file:line, extends composition,
and the ``dcor-agent validate`` command."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from edge_agent import cli
from edge_agent.config import AgentConfig, ConfigError, load_config, validate_config
from edge_agent.yamlconf import ConfigFileError, load_with_positions, locate


def write(folder: Path, name: str, text: str) -> Path:
    p = folder / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


VALID = """
device_id: beji-pole-01
profile: rpi4-cctv
hardware: rpi4
mqtt:
  host: hub.local
  port: 8883
  keepalive_s: 60
  session_expiry: 2h
  reconnect_min: 250ms
  reconnect_max: 1m
health:
  interval: 15s
  disk_path: /data
outbox:
  path: /data/outbox.sqlite
  max_bytes: 256MiB
  window: 32
  ack_timeout: 45s
  backlog_rate: 100
metrics_port: 9100
"""


def test_a_valid_file_loads_with_human_units(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "agent.yaml", VALID))
    assert isinstance(cfg, AgentConfig)
    assert cfg.device_id == "beji-pole-01"
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.keepalive_s) == ("hub.local", 8883, 60)
    assert cfg.mqtt.session_expiry == 7200.0
    assert cfg.mqtt.reconnect_min == 0.25 and cfg.mqtt.reconnect_max == 60.0
    assert cfg.health.interval == 15.0 and cfg.health.disk_path == Path("/data")
    assert cfg.outbox.max_bytes == 256 * 2**20 and cfg.outbox.ack_timeout == 45.0
    assert cfg.metrics_port == 9100


def test_defaults_fill_everything_but_the_device_id(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "agent.yaml", "device_id: abc\n"))
    assert cfg.mqtt.port == 1883 and cfg.health.interval == 10.0
    assert cfg.outbox.max_bytes == 64 * 2**20
    assert cfg.password() == ""


def test_password_is_read_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    cfg = validate_config({"device_id": "abc", "mqtt": {"password_file": str(secret)}})
    assert cfg.password() == "s3cret"


@pytest.mark.parametrize(
    ("text", "line", "where", "says"),
    [
        # unknown keys, at the top, nested, and with a mapping value (line of the key)
        ("device_id: abc\nbogus: 1\n", 2, "bogus", "Extra inputs are not permitted"),
        ("device_id: abc\nmqtt:\n  host: h\n  prot: 1883\n", 4, "mqtt.prot", "Extra inputs"),
        ("device_id: abc\nmqtt:\n  port: 1\n  proxy:\n    ca: x\n", 4, "mqtt.proxy",
         "Extra inputs"),
        ("device_id: abc\nextra_list:\n  - 1\n  - 2\n", 2, "extra_list", "Extra inputs"),
        # wrong types and ranges
        ("device_id: abc\nmqtt:\n  port: high\n", 3, "mqtt.port", "integer"),
        ("device_id: abc\nmqtt:\n  port: 70000\n", 3, "mqtt.port", "less than or equal"),
        ("device_id: abc\nhealth:\n  interval: soon\n", 3, "health.interval",
         "invalid duration"),
        ("device_id: abc\nhealth:\n  interval: 100ms\n", 3, "health.interval",
         "greater than or equal"),
        ("device_id: abc\noutbox:\n  max_bytes: lots\n", 3, "outbox.max_bytes", "invalid size"),
        ("device_id: abc\noutbox:\n  max_bytes: 1KB\n", 3, "outbox.max_bytes",
         "greater than or equal"),
        ("device_id: abc\nmqtt: 5\n", 2, "mqtt", "valid dictionary"),
        ("# agent\n\ndevice_id: Bad/Id\n", 3, "device_id", "invalid device id"),
        ("profile: x\n", 1, "device_id", "Field required"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, where: str,
                                   says: str) -> None:
    path = write(tmp_path, "agent.yaml", text)
    problems = problems_of(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{line}: {where}: "), problems[0]
    assert says in problems[0]


def test_every_error_is_reported_not_just_the_first(tmp_path: Path) -> None:
    path = write(tmp_path, "agent.yaml", """
        device_id: abc
        mqtt:
          port: 0
          hots: x
        health:
          interval: never
        """)
    problems = problems_of(path)
    assert sorted(p.split(": ")[0] for p in problems) == [
        f"{path}:3", f"{path}:4", f"{path}:6"]


def test_config_error_message_lists_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "agent.yaml", "device_id: abc\nbogus: 1\n"))
    assert str(info.value).startswith("invalid agent configuration:\n")
    assert f"{tmp_path / 'agent.yaml'}:2: bogus" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("device_id: abc\ndevice_id: abd\n", ":2: duplicate key 'device_id'"),
        ("mqtt:\n  port: 1\n  port: 2\n", ":3: duplicate key 'port'"),
        ("device_id: [abc\n", "agent.yaml"),  # YAML syntax error
    ],
)
def test_file_level_errors(tmp_path: Path, text: str, says: str) -> None:
    problems = problems_of(write(tmp_path, "agent.yaml", text))
    assert len(problems) == 1 and says in problems[0]


def test_missing_file(tmp_path: Path) -> None:
    problems = problems_of(tmp_path / "nope.yaml")
    assert "cannot read" in problems[0] and "nope.yaml" in problems[0]


def test_empty_file_is_an_empty_mapping(tmp_path: Path) -> None:
    data, positions = load_with_positions(write(tmp_path, "empty.yaml", "# nothing\n"))
    assert (data, positions) == ({}, {})
    assert "Field required" in problems_of(tmp_path / "empty.yaml")[0]


# --- extends ------------------------------------------------------------------------------


@pytest.fixture
def layered(tmp_path: Path) -> Path:
    """common.yaml <- profiles/rpi4.yaml <- device.yaml, the way firmware_configs composes."""
    write(tmp_path, "common.yaml", """
        mqtt:
          host: hub.local
          keepalive_s: 30
          reconnect_max: 30s
        health:
          interval: 10s
          disk_path: /
        outbox:
          max_bytes: 64MiB
          window: 64
        metrics_port: 0
        """)
    (tmp_path / "profiles").mkdir()
    write(tmp_path / "profiles", "rpi4.yaml", """
        extends: ../common.yaml
        profile: rpi4-cctv
        hardware: rpi4
        health:
          interval: 15s
        outbox:
          window: 32
        """)
    return write(tmp_path, "device.yaml", """
        extends: profiles/rpi4.yaml
        device_id: beji-pole-01
        mqtt:
          port: 8883
        outbox:
          path: /data/outbox.sqlite
        """)


def test_extends_deep_merges_and_the_child_wins(layered: Path) -> None:
    cfg = load_config(layered)
    assert cfg.device_id == "beji-pole-01" and cfg.profile == "rpi4-cctv"
    assert cfg.mqtt.host == "hub.local" and cfg.mqtt.port == 8883  # both parents and child
    assert cfg.mqtt.keepalive_s == 30 and cfg.mqtt.reconnect_max == 30.0
    assert cfg.health.interval == 15.0 and cfg.health.disk_path == Path("/")
    assert cfg.outbox.window == 32 and cfg.outbox.max_bytes == 64 * 2**20
    assert cfg.outbox.path == Path("/data/outbox.sqlite")


def test_extends_key_is_not_left_in_the_data(layered: Path) -> None:
    data, positions = load_with_positions(layered)
    assert "extends" not in data and ("extends",) not in positions


def test_errors_in_a_parent_name_the_parent_file_and_line(layered: Path) -> None:
    common = layered.parent / "common.yaml"
    common.write_text(common.read_text().replace("keepalive_s: 30", "keepalive_s: 1"))
    problems = problems_of(layered)
    assert len(problems) == 1
    assert problems[0].startswith(f"{common.resolve()}:3: mqtt.keepalive_s: ")


def test_errors_in_the_child_name_the_child(layered: Path) -> None:
    layered.write_text(layered.read_text() + "bogus: 1\n")
    problems = problems_of(layered)
    assert problems == [f"{layered.resolve()}:7: bogus: Extra inputs are not permitted"]


def test_overridden_values_point_at_the_child(layered: Path) -> None:
    _, positions = load_with_positions(layered)
    rpi4 = (layered.parent / "profiles" / "rpi4.yaml").resolve()
    assert locate(positions, ("health", "interval")) == f"{rpi4}:5"
    assert locate(positions, ("outbox", "path")) == f"{layered.resolve()}:6"
    assert locate(positions, ("outbox", "window")) == f"{rpi4}:7"
    # An unknown location falls back to its deepest known ancestor.
    assert locate(positions, ("outbox", "window", "x")) == f"{rpi4}:7"
    assert locate({}, ("a",)) == "?"


def test_lists_are_replaced_whole(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "a:\n  items: [1, 2, 3]\n  keep: yes\nb: [x]\n")
    child = write(tmp_path, "child.yaml", "extends: base.yaml\na:\n  items: [9]\n")
    data, _ = load_with_positions(child)
    assert data == {"a": {"items": [9], "keep": True}, "b": ["x"]}


def test_a_scalar_replaces_a_mapping_and_back(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "a: {x: 1}\nb: 2\n")
    child = write(tmp_path, "child.yaml", "extends: base.yaml\na: 3\nb: {y: 4}\n")
    data, _ = load_with_positions(child)
    assert data == {"a": 3, "b": {"y": 4}}


@pytest.mark.parametrize(
    "files",
    [
        {"a.yaml": "extends: a.yaml\nx: 1\n"},
        {"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: c.yaml\n",
         "c.yaml": "extends: a.yaml\n"},
    ],
)
def test_extends_loops_are_refused(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(ConfigFileError, match="loops back"):
        load_with_positions(tmp_path / "a.yaml")
    assert "loops back" in problems_of(tmp_path / "a.yaml")[0]


def test_a_diamond_is_not_a_loop(tmp_path: Path) -> None:
    # The same file reached twice along one chain is a loop; reached by two chains it is not.
    write(tmp_path, "common.yaml", "device_id: abc\n")
    write(tmp_path, "mid.yaml", "extends: common.yaml\nprofile: p\n")
    child = write(tmp_path, "child.yaml", "extends: mid.yaml\n")
    assert load_config(child).profile == "p"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("extends: missing.yaml\n", "cannot read"),
        ("extends: [a.yaml]\n", "'extends' must name a file"),
    ],
)
def test_bad_extends(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigFileError, match=says):
        load_with_positions(write(tmp_path, "child.yaml", text))


def test_duplicate_keys_in_a_parent_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "mqtt:\n  host: a\n  host: b\n")
    child = write(tmp_path, "child.yaml", "extends: base.yaml\ndevice_id: abc\n")
    problems = problems_of(child)
    assert "base.yaml:3: duplicate key 'host'" in problems[0]


# --- dcor-agent validate --------------------------------------------------------------------


def test_cli_validate_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "agent.yaml", VALID)
    assert cli.main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: valid (device beji-pole-01, profile rpi4-cctv)\n"
    assert err == ""


def test_cli_validate_without_profile(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "agent.yaml", "device_id: abc\n")
    assert cli.main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.endswith("(device abc, profile -)\n")


def test_cli_validate_prints_each_error_with_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "agent.yaml", "device_id: abc\nmqtt:\n  port: x\nbogus: 1\n")
    assert cli.main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "invalid agent configuration:"
    assert any(ln.strip().startswith(f"{path}:3: mqtt.port: ") for ln in lines[1:])
    assert any(ln.strip().startswith(f"{path}:4: bogus: ") for ln in lines[1:])


def test_cli_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        cli.main(["validate"])
    assert info.value.code == 2
    assert "usage: dcor-agent" in capsys.readouterr().err
