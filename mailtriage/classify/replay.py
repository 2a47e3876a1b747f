"""Replaying stored mail through another rules file: what would change, and which rule changes it.

Beside the classify step, for admins: `mailtriage rules replay` feeds each
stored ticket's first customer message (its raw bytes, parsed again, so the
rules see what they saw) to the rules in force and to a candidate file, and
this module compares the two verdicts. Pure: messages in, a Replay out; the
read-only database read is store/readonly.py's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from mailtriage.classify.engine import classify
from mailtriage.classify.priority import Matrix
from mailtriage.classify.rules import RuleSet
from mailtriage.mail.parse import parse
from mailtriage.model import Level, Verdict

# The ticket fields a verdict sets, in the order changes are listed.
FIELDS = ("severity", "impact", "urgency", "tier", "queue", "assignee", "tags")


@dataclass(frozen=True)
class Change:
    """One field of one ticket that the candidate rules would set differently."""

    ref: str
    field: str
    old: Any
    new: Any
    rule: str          # the candidate's rule that decided the new value, or "default"

    def as_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "field": self.field, "old": self.old, "new": self.new, "rule": self.rule}


@dataclass
class Replay:
    messages: int = 0
    changed: list[Change] = field(default_factory=list)

    def by_rule(self) -> dict[str, int]:
        """How many tickets each rule changes (a ticket counts once per rule)."""
        counts = Counter(rule for _, rule in dict.fromkeys((c.ref, c.rule) for c in self.changed))
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def as_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "changed": [c.as_dict() for c in self.changed],
                "by_rule": self.by_rule()}


def replay(messages: Iterable[tuple[str, bytes]], in_force: RuleSet, candidate: RuleSet,
           matrix: Matrix | None = None) -> Replay:
    """Each (ticket ref, raw first message) through both rule sets (with the
    config's priority matrix, the same for both); the differences."""
    result = Replay()
    for ref, raw in messages:
        mail = parse(raw)
        result.messages += 1
        result.changed.extend(compare(ref, classify(mail, in_force, matrix), classify(mail, candidate, matrix),
                                      candidate))
    return result


def compare(ref: str, old: Verdict, new: Verdict, candidate: RuleSet) -> list[Change]:
    """The fields where `new` (the candidate's verdict) differs from `old`."""
    before, after = _values(old), _values(new)
    return [Change(ref, name, before[name], after[name], _decider(name, old, new, candidate))
            for name in FIELDS if before[name] != after[name]]


def _values(verdict: Verdict) -> dict[str, Any]:
    return {"severity": verdict.severity.value, "impact": _level(verdict.impact),
            "urgency": _level(verdict.urgency), "tier": verdict.tier.value, "queue": verdict.queue,
            "assignee": verdict.assignee, "tags": sorted(verdict.tags)}


def _level(level: Level | None) -> str | None:
    return None if level is None else level.value


def _decider(name: str, old: Verdict, new: Verdict, candidate: RuleSet) -> str:
    if name in ("impact", "urgency"):
        # The first matching rule that sets it; else the customer's header (urgency) or nobody.
        actions = {rule.name: rule.actions for rule in candidate.rules}
        return next((rule for rule in new.matched_rules if getattr(actions[rule], name) is not None), "default")
    if name != "tags":
        return new.decided_by.get(name, "default")
    # Tags add up, so no single rule decides them: name the first matching rule
    # that adds a tag the verdict in force lacks. Tags only dropped: no rule of
    # the candidate sets them, which is what "default" says for the other fields.
    added = set(new.tags) - set(old.tags)
    actions = {rule.name: rule.actions for rule in candidate.rules}
    return next((name for name in new.matched_rules if added & set(actions[name].tags)), "default")
