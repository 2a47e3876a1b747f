"""The rules file is validated up front: every problem, each at its FILE:LINE."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from mailtriage.classify import load_rules, rules_from_text
from mailtriage.errors import ConfigError
from mailtriage.model import Severity, Tier


def problems(text: str, file: str = "rules.yaml") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        rules_from_text(dedent(text), file)
    assert caught.value.exit_code == 2
    return [str(problem) for problem in caught.value.problems]


def test_valid_file_compiles(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(dedent("""\
        rules:
          - name: outage
            description: the whole service is unusable
            when:
              subject_or_body: ["outage", "is down"]
            set: {severity: S1, tags: [outage]}
            stop: true
          - name: vip
            when: {header: {X-Priority: ["1"]}, to: vip@example.test}
            set: {tier: L2, assignee: alice}
        default: {severity: S4, queue: general}
        """), encoding="utf-8")
    ruleset = load_rules(path)
    assert [rule.name for rule in ruleset.rules] == ["outage", "vip"]
    assert [rule.line for rule in ruleset.rules] == [2, 8]
    assert ruleset.rules[0].stop and ruleset.rules[0].description
    assert [c.field for c in ruleset.rules[1].conditions] == ["header:X-Priority", "to"]
    assert (ruleset.default.severity, ruleset.default.tier, ruleset.default.queue) == (
        Severity.S4, Tier.L1, "general")
    assert ruleset.source == str(path)
    assert ruleset.max_scan_chars == 100_000


def test_bad_severity_is_reported_at_its_line() -> None:
    assert problems("""\
        rules:
          - name: outage
            when: {subject: outage}
            set: {severity: S1}
          - name: billing
            when: {subject: invoice}
            set: {severity: S9, queue: billing}
        """) == ["rules.yaml:7: rule 'billing': severity must be one of S1, S2, S3, S4, not 'S9'"]


def test_block_style_values_point_at_their_own_line() -> None:
    assert problems("""\
        rules:
          - name: vip
            when:
              to: [vip@example.test]
            set:
              queue: vip
              tier: L9
        """) == ["rules.yaml:7: rule 'vip': tier must be one of L1, L2, L3, L4, not 'L9'"]


def test_many_problems_are_reported_at_once() -> None:
    found = problems("""\
        rules:
          - name: billing
            when: {subject: invoice, from: customer.example}
            sett: {queue: billing}
          - when: {body: help}
          - name: billing
            when: {}
          - name: hdr
            when: {header: {X-Priority: ["1"]}, subjet: [x]}
            set: {tags: [a, 1], queue: 5}
            stop: "yes"
        default: {severity: S0, tier: L1}
        extra: true
        """)
    assert found == [
        "rules.yaml:3: rule 'billing': from: 'customer.example' is not an address or @domain",
        "rules.yaml:4: rule 'billing': unknown key 'sett'; did you mean 'set'?",
        "rules.yaml:5: rule #2: name is required",
        "rules.yaml:6: rule 'billing': duplicate name (first used at line 2)",
        "rules.yaml:7: rule 'billing': 'when' is empty; a rule needs at least one condition",
        "rules.yaml:9: rule 'hdr': when: unknown key 'subjet'; did you mean 'subject'?",
        "rules.yaml:10: rule 'hdr': queue must be a non-empty string, not a number",
        "rules.yaml:10: rule 'hdr': tags must be a list of non-empty strings",
        "rules.yaml:11: rule 'hdr': stop must be true or false, not 'yes'",
        "rules.yaml:12: default: severity must be one of S1, S2, S3, S4, not 'S0'",
        "rules.yaml:13: the rules file: unknown key 'extra'; expected one of rules, default",
    ]


def test_backreference_and_lookaround_are_rejected_at_load_time() -> None:
    assert problems(r"""
        rules:
          - name: repeated
            when:
              body:
                - "plain words"
                - {regex: "(\\w+) \\1"}
                - {regex: "invoice(?!d)"}
        """) == [
        r"rules.yaml:7: rule 'repeated': body: regex '(\w+) \1' is not valid RE2: invalid escape sequence: \1",
        r"rules.yaml:8: rule 'repeated': body: regex 'invoice(?!d)' is not valid RE2: invalid perl operator: (?!",
    ]


def test_unbalanced_regex_is_rejected() -> None:
    found = problems("rules:\n  - {name: r, when: {subject: {regex: '(a'}}}\n")
    assert found == ["rules.yaml:2: rule 'r': subject: regex '(a' is not valid RE2: missing ): (a"]


@pytest.mark.parametrize("text, expected", [
    ("", "rules.yaml:1: the rules file is empty; expected a 'rules:' list"),
    ("- a\n- b\n", "rules.yaml:1: the rules file must be a mapping, not a list"),
    ("default: {severity: S1}\n", "rules.yaml:1: the rules file: 'rules' is required"),
    ("rules: {name: x}\n", "rules.yaml:1: rules must be a list, not a mapping"),
    ("rules:\n  - outage\n", "rules.yaml:2: rule #1 must be a mapping, not a string"),
    ("rules:\n  - name: x\n    set: {severity: S1}\n", "rules.yaml:2: rule 'x': 'when' is required"),
    ("rules:\n  - name: x\n    when: [subject]\n", "rules.yaml:3: rule 'x': when must be a mapping, not a list"),
    ("rules:\n  - name: 7\n    when: {body: x}\n",
     "rules.yaml:2: rule #1: name must be a non-empty string, not a number"),
    ("rules:\n  - name: x\n    when: {body: []}\n", "rules.yaml:3: rule 'x': body: an empty list matches nothing"),
    ("rules:\n  - name: x\n    when: {body: [{a: b}]}\n",
     "rules.yaml:3: rule 'x': body: regex item: unknown key 'a'; expected one of regex, case_sensitive"),
    ("rules:\n  - name: x\n    when: {header: [X-Priority]}\n",
     "rules.yaml:3: rule 'x': header must map header names to items, not a list"),
    ("rules:\n  - name: x\n    when: {header: {}}\n", "rules.yaml:3: rule 'x': header is empty"),
    ("rules:\n  - name: x\n    when: {to: ['@']}\n", "rules.yaml:3: rule 'x': to: '@' is not an address or @domain"),
    ("rules:\n  - name: x\n    when: {body: '   '}\n", "rules.yaml:3: rule 'x': body: a keyword cannot be empty"),
    ("rules: []\ndefault: {queue: ''}\n", "rules.yaml:2: default: queue must be a non-empty string"),
    ("rules: []\ndefault: {assignee: bob}\n",
     "rules.yaml:2: default: unknown key 'assignee'; expected one of severity, tier, queue"),
])
def test_single_problems(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_yaml_syntax_error_has_a_line() -> None:
    found = problems("rules:\n  - name: x\n    when: {body: [a, b}\n")
    assert len(found) == 1
    assert found[0].startswith("rules.yaml:3: YAML syntax:")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_rules(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}:1: file not found"


def test_single_items_and_numbers_stand_in_for_lists() -> None:
    ruleset = rules_from_text(
        "rules:\n  - {name: p, when: {header: {X-Priority: 1}, from: ANNA@Customer.Example}, set: {tags: urgent}}\n",
        "r.yaml",
    )
    rule = ruleset.rules[0]
    assert [m.written for c in rule.conditions for m in c.matchers] == ["1", "ANNA@Customer.Example"]
    assert rule.actions.tags == ("urgent",)


def test_max_scan_chars_must_be_positive() -> None:
    with pytest.raises(ValueError):
        rules_from_text("rules: []\n", "r.yaml", max_scan_chars=0)
