"""The pure half of `rules replay`: two rule sets, the same messages, the differences
and the candidate's rule that made each one. Real rules text, real messages, no mocks."""

from __future__ import annotations

from helpers import eml
from mailtriage.classify import rules_from_text
from mailtriage.classify.replay import Change, replay

IN_FORCE = rules_from_text("""
rules:
  - name: outage
    when: {subject_or_body: [outage, is down]}
    set: {severity: S1, tags: [outage]}
    stop: true
  - name: billing
    when: {subject: [invoice]}
    set: {queue: billing, tags: [billing]}
default: {severity: S3, tier: L1, queue: support}
""", "in-force.yaml")

CANDIDATE = rules_from_text("""
rules:
  - name: toner
    when: {body: [toner]}
    set: {severity: S2, tier: L2, assignee: bob, tags: [printer]}
  - name: outage
    when: {subject_or_body: [outage, is down]}
    set: {severity: S1, tags: [outage]}
    stop: true
default: {severity: S4, tier: L1, queue: support}
""", "candidate.yaml")


def run(*messages: tuple[str, bytes]) -> dict:
    return replay(messages, IN_FORCE, CANDIDATE).as_dict()


def test_the_same_rules_change_nothing() -> None:
    messages = [("MT-1", eml("VPN is down", "help")), ("MT-2", eml("Invoice", "toner is empty"))]
    result = replay(messages, IN_FORCE, IN_FORCE)
    assert result.as_dict() == {"messages": 2, "changed": [], "by_rule": {}}


def test_each_changed_field_names_the_candidates_deciding_rule() -> None:
    result = run(("MT-7", eml("Printer", "The toner is empty.")))
    assert result["messages"] == 1
    assert result["changed"] == [
        {"ref": "MT-7", "field": "severity", "old": "S3", "new": "S2", "rule": "toner"},
        {"ref": "MT-7", "field": "tier", "old": "L1", "new": "L2", "rule": "toner"},
        {"ref": "MT-7", "field": "assignee", "old": None, "new": "bob", "rule": "toner"},
        {"ref": "MT-7", "field": "tags", "old": [], "new": ["printer"], "rule": "toner"},
    ]
    assert result["by_rule"] == {"toner": 1}          # tickets, not fields


def test_a_new_default_is_named_default_and_dropped_tags_too() -> None:
    # billing is gone from the candidate: the queue falls back to the default,
    # the billing tag is dropped, and the candidate's default severity differs.
    result = run(("MT-3", eml("Invoice for March", "Please send a copy.")))
    assert [Change(**c) for c in result["changed"]] == [
        Change("MT-3", "severity", "S3", "S4", "default"),
        Change("MT-3", "queue", "billing", "support", "default"),
        Change("MT-3", "tags", ["billing"], [], "default"),
    ]
    assert result["by_rule"] == {"default": 1}


def test_an_unchanged_verdict_is_not_listed_and_counts_stay_per_ticket() -> None:
    result = run(("MT-1", eml("VPN is down", "Nobody can work.")),            # outage in both: S1
                 ("MT-2", eml("Printer", "toner")), ("MT-4", eml("Toner", "toner again")))
    assert result["messages"] == 3
    assert {c["ref"] for c in result["changed"]} == {"MT-2", "MT-4"}
    assert result["by_rule"] == {"toner": 2}


def test_tags_name_the_rule_that_adds_a_tag_not_one_that_only_keeps_one() -> None:
    # outage matches in both (tag kept); toner adds `printer`: toner decided the new tags.
    result = run(("MT-5", eml("Outage", "and the toner is empty")))
    tags = [c for c in result["changed"] if c["field"] == "tags"]
    assert tags == [{"ref": "MT-5", "field": "tags", "old": ["outage"], "new": ["outage", "printer"],
                     "rule": "toner"}]
