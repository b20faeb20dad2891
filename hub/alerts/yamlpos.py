"""YAML with line numbers, so configuration errors can name the line to fix.

``load_yaml`` returns the plain data (``yaml.safe_load`` semantics) and a ``LineIndex`` that
maps a pydantic error location such as ``("rules", 3, "metric", "threshold")`` to the line of
the deepest node that exists. Location parts that are not in the document (the tag pydantic
adds for a discriminated union) are skipped. Duplicate mapping keys, which ``safe_load``
silently collapses, are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml


class YamlError(ValueError):
    """The text is not YAML, or repeats a key; ``line`` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class LineIndex:
    root: yaml.Node | None

    def line_of(self, loc: Sequence[str | int]) -> int:
        """1-based line of the deepest node along ``loc``; 0 for an empty document."""
        node = self.root
        if node is None:
            return 0
        for part in loc:
            child = _child(node, part)
            if child is not None:
                node = child
        return int(node.start_mark.line) + 1


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return value
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        return node.value[part] if 0 <= part < len(node.value) else None
    return None


def load_yaml(text: str) -> tuple[Any, LineIndex]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = int(mark.line) + 1 if mark is not None else 0
        raise YamlError(f"not valid YAML: {exc}", line) from exc
    if root is not None:
        _check_duplicates(root)
    return data, LineIndex(root)


def _check_duplicates(node: yaml.Node) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise YamlError(f"key {key.value!r} appears twice", key.start_mark.line + 1)
                seen.add(key.value)
            _check_duplicates(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicates(item)
