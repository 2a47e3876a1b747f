"""The rules file: YAML in, a validated, compiled RuleSet out.

The first step of classify, run when the config is loaded (and on SIGHUP),
never per message: every problem in the file is collected and raised at once
as a ConfigError of `FILE:LINE: message` lines, and what survives is compiled
into small frozen objects that engine.py interprets.

    rules:
      - name: outage                     # required, unique
        description: shown by `rules test`   # optional
        when:                            # every key must match; a list means any item
          subject_or_body: ["outage", "is down", {regex: "sev(erity)?\\\\s*1"}]
          from: ["@customer.example", "anna@partner.example"]
          to: ["vip@example.test"]       # To or Cc
          header: {X-Priority: ["1"]}
        set: {severity: S1, tier: L2, queue: ops, assignee: alice, tags: [outage]}
        # or {impact: high, urgency: medium}: the config's priority_matrix then
        # decides the severity (classify/priority.py)
        stop: true                       # look at no later rule
    default: {severity: S3, tier: L1, queue: support}

A plain item is a keyword or phrase (case-insensitive, on word boundaries in
any script, whitespace matching any run of whitespace); in `from`/`to` it is
an address or `@domain` (that exact domain: use a regex item for subdomains).
`{regex: "...", case_sensitive: false}` is an RE2 regex, searched, never
backtracking. A single item may stand in for a list.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from mailtriage.config import yamlsrc
from mailtriage.classify import matchers
from mailtriage.classify.matchers import Condition, Matcher
from mailtriage.errors import ConfigError, Problem
from mailtriage.model import Level, Severity, Tier

MAX_SCAN_CHARS = 100_000

_TOP_KEYS = ("rules", "default")
_RULE_KEYS = ("name", "description", "when", "set", "stop")
_SET_KEYS = ("severity", "impact", "urgency", "tier", "queue", "assignee", "tags")
_DEFAULT_KEYS = ("severity", "tier", "queue")
_REGEX_KEYS = ("regex", "case_sensitive")
_MATCH_KEYS = tuple(matchers.PREDICATES)
_ABSENT = object()


@dataclass(frozen=True)
class Actions:
    """A rule's `set`: what it decides when it matches (None: leaves it open)."""

    severity: Severity | None = None
    tier: Tier | None = None
    queue: str | None = None
    assignee: str | None = None
    tags: tuple[str, ...] = ()
    impact: Level | None = None
    urgency: Level | None = None


@dataclass(frozen=True)
class Defaults:
    """The file's `default`: what no matching rule decided."""

    severity: Severity = Severity.S3
    tier: Tier = Tier.L1
    queue: str = "support"


@dataclass(frozen=True)
class Rule:
    name: str
    conditions: tuple[Condition, ...]   # all must hit
    actions: Actions
    stop: bool = False
    description: str = ""
    line: int = 0                       # where the rule starts in its file


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    default: Defaults = Defaults()
    max_scan_chars: int = MAX_SCAN_CHARS   # longest prefix of subject/body/header searched
    source: str = "<rules>"


def load_rules(path: Path, *, max_scan_chars: int = MAX_SCAN_CHARS) -> RuleSet:
    """Read and compile a rules file; ConfigError lists every problem in it."""
    data, locator = yamlsrc.load(Path(path))
    return _build(data, locator, max_scan_chars)


def rules_from_text(text: str, file: str, *, max_scan_chars: int = MAX_SCAN_CHARS) -> RuleSet:
    """The same from text already in memory; `file` names it in problems."""
    data, locator = yamlsrc.loads(text, file)
    return _build(data, locator, max_scan_chars)


def _build(data: Any, locator: yamlsrc.Locator, max_scan_chars: int) -> RuleSet:
    if max_scan_chars < 1:
        raise ValueError("max_scan_chars must be positive")
    reader = _Reader(locator)
    rules, default = reader.read_file(data)
    if reader.problems:
        raise ConfigError(sorted(reader.problems, key=lambda problem: problem.line))
    return RuleSet(tuple(rules), default, max_scan_chars, locator.file)


def _kind(value: Any) -> str:
    """How YAML would call the value, for messages."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    names = {str: "a string", int: "a number", float: "a number", list: "a list", dict: "a mapping"}
    return names.get(type(value), type(value).__name__)


def _hint(key: Any, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(str(key), allowed, n=1)
    return f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(allowed)}"


KeyPath = tuple[Any, ...]   # keys and indexes from the top of the file


class _Reader:
    """Walks the parsed YAML once, collecting every problem instead of stopping."""

    def __init__(self, locator: yamlsrc.Locator) -> None:
        self.locator = locator
        self.problems: list[Problem] = []

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.locator.problem(path, message))

    def mapping(self, value: Any, path: KeyPath, what: str, allowed: Iterable[str]) -> dict | None:
        """`value` if it is a mapping with only `allowed` keys (problems reported)."""
        if not isinstance(value, dict):
            self.problem(path, f"{what} must be a mapping, not {_kind(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.problem(path + (key,), f"{what}: unknown key {key!r}; {_hint(key, allowed)}")
        return value

    def read_file(self, data: Any) -> tuple[list[Rule], Defaults]:
        if data is None:
            self.problem((), "the rules file is empty; expected a 'rules:' list")
            return [], Defaults()
        top = self.mapping(data, (), "the rules file", _TOP_KEYS)
        if top is None:
            return [], Defaults()
        default = self.read_default(top.get("default", _ABSENT))
        raw_rules = top.get("rules", _ABSENT)
        if raw_rules is _ABSENT:
            self.problem((), "the rules file: 'rules' is required")
            return [], default
        if not isinstance(raw_rules, list):
            self.problem(("rules",), f"rules must be a list, not {_kind(raw_rules)}")
            return [], default
        return self.read_rules(raw_rules), default

    def read_rules(self, raw_rules: list) -> list[Rule]:
        rules: list[Rule] = []
        first_line: dict[str, int] = {}
        for index, raw in enumerate(raw_rules):
            rule = self.read_rule(index, raw)
            name = raw.get("name") if isinstance(raw, dict) else None
            if isinstance(name, str) and name in first_line:
                self.problem(("rules", index, "name"),
                             f"rule {name!r}: duplicate name (first used at line {first_line[name]})")
            elif isinstance(name, str):
                first_line[name] = self.locator.line(("rules", index, "name"))
            if rule is not None:
                rules.append(rule)
        return rules

    def read_rule(self, index: int, raw: Any) -> Rule | None:
        path: KeyPath = ("rules", index)
        before = len(self.problems)
        name = raw.get("name") if isinstance(raw, dict) else None
        label = f"rule {name!r}" if isinstance(name, str) and name.strip() else f"rule #{index + 1}"
        rule = self.mapping(raw, path, label, _RULE_KEYS)
        if rule is None:
            return None
        if "name" not in rule:
            self.problem(path, f"{label}: name is required")
        name = self.read_name(rule, "name", path, label)
        conditions = self.read_when(rule.get("when", _ABSENT), path + ("when",), label, str(name))
        actions = self.read_actions(rule.get("set", _ABSENT), path + ("set",), label)
        stop = self.read_flag(rule.get("stop", False), path + ("stop",), f"{label}: stop")
        description = rule.get("description", "")
        if not isinstance(description, str):
            self.problem(path + ("description",), f"{label}: description must be a string, not {_kind(description)}")
        if len(self.problems) > before:
            return None
        return Rule(str(name), conditions, actions, stop, description, self.locator.line(path))

    def read_when(self, raw: Any, path: KeyPath, label: str, rule: str) -> tuple[Condition, ...]:
        if raw is _ABSENT:
            self.problem(path[:-1], f"{label}: 'when' is required")
            return ()
        if raw is None or raw == {}:
            self.problem(path, f"{label}: 'when' is empty; a rule needs at least one condition")
            return ()
        when = self.mapping(raw, path, f"{label}: when", _MATCH_KEYS)
        if when is None:
            return ()
        conditions: list[Condition] = []
        for key, value in when.items():
            if key == "header":
                conditions.extend(self.read_header(value, path + (key,), label, rule))
            elif key in matchers.PREDICATES:
                found = self.read_items(value, path + (key,), f"{label}: {key}", key in matchers.ADDRESS_KEYS)
                conditions.append(Condition(rule, key, found))
        return tuple(conditions)

    def read_header(self, raw: Any, path: KeyPath, label: str, rule: str) -> list[Condition]:
        if not isinstance(raw, dict) or not raw:
            got = "is empty" if raw in (None, {}) else f"must map header names to items, not {_kind(raw)}"
            self.problem(path, f"{label}: header {got}")
            return []
        conditions = []
        for name, value in raw.items():
            if not isinstance(name, str) or not name or ":" in name or any(c.isspace() for c in name):
                self.problem(path + (name,), f"{label}: header: {name!r} is not a header name")
                continue
            found = self.read_items(value, path + (name,), f"{label}: header {name}", addresses=False)
            conditions.append(Condition(rule, "header", found, header=name))
        return conditions

    def read_items(self, raw: Any, path: KeyPath, where: str, addresses: bool) -> tuple[Matcher, ...]:
        pairs = [(item, path + (j,)) for j, item in enumerate(raw)] if isinstance(raw, list) else [(raw, path)]
        if not pairs:
            self.problem(path, f"{where}: an empty list matches nothing")
        found = (self.read_item(item, item_path, where, addresses) for item, item_path in pairs)
        return tuple(matcher for matcher in found if matcher is not None)

    def read_item(self, item: Any, path: KeyPath, where: str, addresses: bool) -> Matcher | None:
        if isinstance(item, dict):
            return self.read_regex(item, path, where)
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            self.problem(path, f"{where}: an item must be a string or {{regex: ...}}, not {_kind(item)}")
            return None
        try:
            return matchers.address(str(item)) if addresses else matchers.keyword(str(item))
        except ValueError as exc:
            self.problem(path, f"{where}: {exc}")
            return None

    def read_regex(self, item: dict, path: KeyPath, where: str) -> Matcher | None:
        before = len(self.problems)
        self.mapping(item, path, f"{where}: regex item", _REGEX_KEYS)
        pattern = item.get("regex")
        if "regex" not in item:
            if len(self.problems) == before:   # else the typo has been reported
                self.problem(path, f"{where}: a mapping item needs a 'regex' key")
        elif not isinstance(pattern, str):
            self.problem(path + ("regex",), f"{where}: regex must be a string, not {_kind(pattern)}")
        case_sensitive = self.read_flag(item.get("case_sensitive", False), path + ("case_sensitive",),
                                        f"{where}: case_sensitive")
        if len(self.problems) > before or not isinstance(pattern, str):
            return None
        try:
            return matchers.regex(pattern, case_sensitive)
        except ValueError as exc:
            self.problem(path + ("regex",), f"{where}: {exc}")
            return None

    def read_actions(self, raw: Any, path: KeyPath, label: str) -> Actions:
        if raw is _ABSENT:
            return Actions()
        actions = self.mapping(raw, path, f"{label}: set", _SET_KEYS)
        if actions is None:
            return Actions()
        return Actions(
            severity=self.read_choice(actions, "severity", Severity, path, label),
            tier=self.read_choice(actions, "tier", Tier, path, label),
            queue=self.read_name(actions, "queue", path, label),
            assignee=self.read_name(actions, "assignee", path, label),
            tags=self.read_tags(actions.get("tags", []), path + ("tags",), label),
            impact=self.read_choice(actions, "impact", Level, path, label),
            urgency=self.read_choice(actions, "urgency", Level, path, label),
        )

    def read_default(self, raw: Any) -> Defaults:
        if raw is _ABSENT:
            return Defaults()
        default = self.mapping(raw, ("default",), "default", _DEFAULT_KEYS)
        if default is None:
            return Defaults()
        fallback = Defaults()
        path: KeyPath = ("default",)
        return Defaults(
            severity=self.read_choice(default, "severity", Severity, path, "default") or fallback.severity,
            tier=self.read_choice(default, "tier", Tier, path, "default") or fallback.tier,
            queue=self.read_name(default, "queue", path, "default") or fallback.queue,
        )

    def read_choice(self, data: dict, key: str, enum: Any, path: KeyPath, label: str) -> Any:
        if key not in data:
            return None
        value = data[key]
        choices = [member.value for member in enum]
        if value not in choices:
            self.problem(path + (key,), f"{label}: {key} must be one of {', '.join(choices)}, not {value!r}")
            return None
        return enum(value)

    def read_name(self, data: dict, key: str, path: KeyPath, label: str) -> str | None:
        if key not in data:
            return None
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            got = "" if isinstance(value, str) else f", not {_kind(value)}"
            self.problem(path + (key,), f"{label}: {key} must be a non-empty string{got}")
            return None
        return value.strip()

    def read_tags(self, raw: Any, path: KeyPath, label: str) -> tuple[str, ...]:
        tags = [raw] if isinstance(raw, str) else raw
        if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
            self.problem(path, f"{label}: tags must be a list of non-empty strings")
            return ()
        return tuple(dict.fromkeys(t.strip() for t in tags))

    def read_flag(self, value: Any, path: KeyPath, what: str) -> bool:
        if not isinstance(value, bool):
            self.problem(path, f"{what} must be true or false, not {value!r}")
            return False
        return value
