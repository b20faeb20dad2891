"""YAML loading that remembers where each value came from, for errors that name the line.

Supports ``extends: <file>`` at the top of a document (ESPHome-style composition: a common
profile extended by a thin per-hardware one, extended by a device's own file). Mappings merge
deeply, the extending file wins; lists are replaced whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dcor_wire.configdoc import merge

Loc = tuple[str | int, ...]
Positions = dict[Loc, tuple[str, int]]


class ConfigFileError(ValueError):
    """A configuration file cannot be read or parsed; the message names file and line."""


def load_with_positions(path: Path, _seen: tuple[Path, ...] = ()) -> tuple[Any, Positions]:
    path = path.resolve()
    if path in _seen:
        raise ConfigFileError(f"{path}: 'extends' loops back to itself")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{path}: {exc}") from exc
    if node is None:
        return {}, {}
    positions: Positions = {}
    data = _build(node, (), str(path), positions)
    if isinstance(data, dict) and "extends" in data:
        parent_name = data.pop("extends")
        positions.pop(("extends",), None)
        if not isinstance(parent_name, str):
            raise ConfigFileError(f"{path}: 'extends' must name a file")
        parent, parent_pos = load_with_positions(path.parent / parent_name, (*_seen, path))
        data = merge(parent, data)
        parent_pos.update(positions)
        positions = parent_pos
    return data, positions


def _build(node: yaml.Node, loc: Loc, fname: str, pos: Positions) -> Any:
    pos[loc] = (fname, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            if key in out:
                raise ConfigFileError(
                    f"{fname}:{key_node.start_mark.line + 1}: duplicate key {key!r}"
                )
            out[key] = _build(value_node, (*loc, key), fname, pos)
            # An error about a key names the key's line, not where its value starts (a
            # nested mapping starts on the next line).
            pos[(*loc, key)] = (fname, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, (*loc, i), fname, pos) for i, v in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def locate(positions: Positions, loc: Loc) -> str:
    """``file:line`` of the deepest known ancestor of ``loc``."""
    for n in range(len(loc), -1, -1):
        hit = positions.get(tuple(loc[:n]))
        if hit:
            return f"{hit[0]}:{hit[1]}"
    return "?"
