"""YAML that remembers where each value came from.

Config, rules and calendars are read with `load(path)`, which returns plain
Python data plus a `Locator` that answers "which line of which file holds the
value at this path?", so that every problem can be reported as
`FILE:LINE: message`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from mailtriage.errors import ConfigError, Problem

PathKey = tuple[Any, ...]


@dataclass
class Locator:
    file: str
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: Iterable[Any]) -> int:
        """The line of the value at `path`, or of its nearest ancestor."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def problem(self, path: Iterable[Any], message: str) -> Problem:
        return Problem(self.file, self.line(path), message)


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that keeps the node tree so that lines can be mapped."""


def _walk(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), lines)
            # The key's own line is more useful than the value's for a bad key.
            lines[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), lines)


def loads(text: str, file: str) -> tuple[Any, Locator]:
    """Parse YAML text; a syntax error becomes a ConfigError at its line."""
    locator = Locator(file)
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(Problem(file, line, f"YAML syntax: {exc.problem or exc}")) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(Problem(file, 1, f"YAML: {exc}")) from exc
    if node is not None:
        _walk(node, (), locator.lines)
    return data, locator


def load(path: Path) -> tuple[Any, Locator]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(Problem(str(path), 1, "file not found")) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(Problem(str(path), 1, f"not UTF-8: {exc.reason}")) from exc
    except OSError as exc:              # unreadable (permissions, a folder): still the config's problem
        raise ConfigError(Problem(str(path), 1, f"cannot read: {exc.strerror or exc}")) from exc
    return loads(text, str(path))
