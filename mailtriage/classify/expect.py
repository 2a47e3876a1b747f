"""Rule fixtures: sample messages with what the rules must decide for them.

Beside the classify step, for admins and CI: `mailtriage rules test DIR
--expect` runs each `X.eml` of DIR through the rules and compares the
verdict with `X.expect.yaml` beside it:

    # X.expect.yaml: any of these keys; a key left out is not checked
    severity: S1
    tier: L1
    queue: support
    tags: [outage]          # the exact set of tags; [] expects none

The fixture set is read whole before anything runs, and every problem in
it (a broken or unknown key, a file without its pair) is raised at once as
`FILE:LINE: message`, like the rules file's. The shipped set for the example
rules is config/rules-fixtures/.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailtriage.classify.rules import _hint, _kind
from mailtriage.config import yamlsrc
from mailtriage.errors import ConfigError, Problem
from mailtriage.model import Severity, Tier, Verdict

SUFFIX = ".expect.yaml"
_CHOICES = {"severity": [s.value for s in Severity], "tier": [t.value for t in Tier]}
_KEYS = ("severity", "tier", "queue", "tags")


@dataclass(frozen=True)
class Expectation:
    """What one fixture expects; None: that field is not checked."""

    severity: str | None = None
    tier: str | None = None
    queue: str | None = None
    tags: frozenset[str] | None = None


@dataclass(frozen=True)
class Fixture:
    eml: Path
    expect: Expectation


def load_fixtures(folder: Path) -> list[Fixture]:
    """Every `X.eml` with its `X.expect.yaml`, by name; ConfigError lists every problem."""
    if not folder.is_dir():
        raise ConfigError(Problem(str(folder), 1, "not a folder of X.eml and X.expect.yaml fixtures"))
    problems: list[Problem] = []
    fixtures: list[Fixture] = []
    emls = {path.name[:-len(".eml")]: path for path in folder.glob("*.eml")}
    expects = {path.name[:-len(SUFFIX)]: path for path in folder.glob("*" + SUFFIX)}
    for name in sorted(expects.keys() - emls.keys()):
        problems.append(Problem(str(expects[name]), 1, f"no {name}.eml beside it"))
    for name in sorted(emls):
        if name not in expects:
            problems.append(Problem(str(emls[name]), 1, f"no {name}{SUFFIX} beside it"))
            continue
        try:
            fixtures.append(Fixture(emls[name], read_expectation(expects[name])))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if not emls and not expects:
        problems.append(Problem(str(folder), 1, "no X.eml fixtures in this folder"))
    if problems:
        raise ConfigError(problems)
    return fixtures


def read_expectation(path: Path) -> Expectation:
    data, locator = yamlsrc.load(path)
    return expectation_from(data, locator)


def expectation_from(data: Any, locator: yamlsrc.Locator) -> Expectation:
    """Validate one parsed .expect.yaml; every problem at its line."""
    if not isinstance(data, dict) or not data:
        got = "empty" if not data else _kind(data)
        raise ConfigError(locator.problem((), f"expected a mapping of {', '.join(_KEYS)}, not {got}"))
    problems = [locator.problem((key,), f"unknown key {key!r}; {_hint(key, _KEYS)}")
                for key in data if key not in _KEYS]
    values: dict[str, Any] = {}
    for key in _KEYS:
        if key in data:
            value, problem = _check(key, data[key])
            if problem:
                problems.append(locator.problem((key,), f"{key}: {problem}"))
            values[key] = value
    if problems:
        raise ConfigError(sorted(problems, key=lambda problem: problem.line))
    return Expectation(**values)


def _check(key: str, value: Any) -> tuple[Any, str | None]:
    """The value as an Expectation holds it, or the problem with it."""
    if key in _CHOICES:
        ok = value in _CHOICES[key]
        return value, None if ok else f"must be one of {', '.join(_CHOICES[key])}, not {value!r}"
    if key == "queue":
        ok = isinstance(value, str) and bool(value.strip())
        return value.strip() if ok else None, None if ok else f"must be a non-empty string, not {_kind(value)}"
    tags = [value] if isinstance(value, str) else value
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        return None, "must be a list of non-empty strings ([] expects no tags)"
    return frozenset(t.strip() for t in tags), None


def mismatches(expect: Expectation, verdict: Verdict) -> list[str]:
    """`severity S2, expected S1` (`tags [a, b], expected [a]`) for each expected field the verdict misses."""
    found: list[str] = []
    for key, want, got in (("severity", expect.severity, verdict.severity.value),
                           ("tier", expect.tier, verdict.tier.value), ("queue", expect.queue, verdict.queue)):
        if want is not None and want != got:
            found.append(f"{key} {got}, expected {want}")
    if expect.tags is not None and expect.tags != set(verdict.tags):
        found.append(f"tags {_tags(verdict.tags)}, expected {_tags(expect.tags)}")
    return found


def _tags(tags: Any) -> str:
    return "[" + ", ".join(sorted(tags)) + "]"
