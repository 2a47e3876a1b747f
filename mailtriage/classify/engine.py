"""The classify step: ParsedMail + RuleSet → Verdict.

Sits after thread and before tickets in the flow. The rules are data (see
rules.py); this is the one small interpreter that runs them. Pure: no I/O,
no clock, so `rules test` and the pipeline get the same answer.

Rules run in order. A rule matches when every one of its conditions hits.
For severity, tier, queue and assignee the first matching rule that sets the
field wins; tags add up; `stop` ends the run; the file's default fills
whatever no rule decided. Impact and urgency are decided the same way (the
customer's headers state urgency when no rule does); with a priority matrix
they may decide the severity (classify/priority.py says how).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from mailtriage.classify import priority
from mailtriage.classify.matchers import MailView
from mailtriage.classify.priority import Matrix, Stated
from mailtriage.classify.rules import Rule, RuleSet
from mailtriage.model import Hit, ParsedMail, Verdict

DECIDED_FIELDS = ("severity", "tier", "queue", "assignee")
MATRIX = "priority_matrix"           # decided_by["severity"] when the matrix decided it


def classify(mail: ParsedMail, rules: RuleSet, matrix: Matrix | None = None) -> Verdict:
    """What `rules` (and the config's priority `matrix`, if any) decide for
    `mail`, with every hit that led there."""
    view = MailView.of(mail, rules.max_scan_chars)
    chosen: dict[str, Any] = {}          # field → value of the first rule that set it
    chosen_by: dict[str, str] = {}
    tags: dict[str, None] = {}           # an ordered set
    matched: list[str] = []
    hits: list[Hit] = []
    for rule, rule_hits in _matching(rules.rules, view):
        matched.append(rule.name)
        hits.extend(rule_hits)
        tags.update(dict.fromkeys(rule.actions.tags))
        for name in DECIDED_FIELDS + ("impact", "urgency"):
            value = getattr(rule.actions, name)
            if value is not None and name not in chosen:
                chosen[name], chosen_by[name] = value, rule.name
    default = rules.default
    impact = Stated(chosen.get("impact"), f"rule {chosen_by.get('impact')}")
    urgency = Stated(chosen["urgency"], f"rule {chosen_by['urgency']}") if "urgency" in chosen \
        else priority.urgency_header(mail)
    severity = chosen.get("severity", default.severity)
    decided_by = {name: chosen_by.get(name, "default") for name in DECIDED_FIELDS}
    how = f"severity {severity.value} ({_by(decided_by['severity'])})"
    if matrix is not None and "severity" not in chosen and (impact.level or urgency.level):
        severity = priority.severity_of(matrix, impact.level, urgency.level)
        decided_by["severity"] = MATRIX
        how = priority.explain(severity, impact, urgency)
    return Verdict(
        severity=severity,
        tier=chosen.get("tier", default.tier),
        queue=chosen.get("queue", default.queue),
        assignee=chosen.get("assignee"),
        tags=tuple(tags),
        matched_rules=tuple(matched),
        hits=tuple(hits),
        decided_by=decided_by,
        impact=impact.level,
        urgency=urgency.level,
        priority=how,
    )


def _by(decider: str) -> str:
    return "the rules' default" if decider == "default" else f"rule {decider}"


def _matching(rules: Iterable[Rule], view: MailView) -> Iterator[tuple[Rule, tuple[Hit, ...]]]:
    """The rules that match, in order, with their hits; none after a `stop` rule."""
    for rule in rules:
        hits = match(rule, view)
        if hits is not None:
            yield rule, hits
            if rule.stop:
                return


def match(rule: Rule, view: MailView) -> tuple[Hit, ...] | None:
    """The rule's hits if every condition hits, else None (stops at the first miss)."""
    hits: list[Hit] = []
    for condition in rule.conditions:
        found = condition.hits(view)
        if not found:
            return None
        hits.extend(found)
    return tuple(hits)
