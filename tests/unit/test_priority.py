"""Impact × urgency (classify/priority.py): real rules text, real ParsedMail values, no mocks."""

from __future__ import annotations

import pytest

from mailtriage.classify import classify, rules_from_text
from mailtriage.classify.priority import urgency_header
from mailtriage.errors import ConfigError
from mailtriage.model import Level, ParsedMail, Severity

MATRIX = {Level.HIGH: [Severity.S1, Severity.S2, Severity.S3],
          Level.MEDIUM: [Severity.S2, Severity.S3, Severity.S4],
          Level.LOW: [Severity.S3, Severity.S4, Severity.S4]}

RULES = rules_from_text("""
rules:
  - name: vpn-down
    when: {subject_or_body: ["vpn"]}
    set: {impact: medium, tags: [vpn]}
  - name: outage
    when: {subject_or_body: ["outage"]}
    set: {severity: S1, impact: low}
  - name: whole-office
    when: {subject_or_body: ["whole office"]}
    set: {impact: high, urgency: low}
default: {severity: S3, tier: L1, queue: support}
""", "rules.yaml")


def mail(subject: str = "Question", body: str = "Hello", headers: tuple[tuple[str, str], ...] = ()) -> ParsedMail:
    return ParsedMail(message_id="<1@test>", message_id_synthesized=False, subject=subject,
                      from_addr="anna@customer.example", from_name="", to=("support@example.test",), cc=(),
                      reply_to=(), date=None, in_reply_to=(), references=(), body_text=body, headers=headers)


def test_importance_high_and_a_rules_medium_impact_give_the_matrixs_s2():
    verdict = classify(mail("VPN broken", headers=(("Importance", "high"),)), RULES, MATRIX)
    assert verdict.severity is Severity.S2
    assert (verdict.impact, verdict.urgency) == (Level.MEDIUM, Level.HIGH)
    assert verdict.decided_by["severity"] == "priority_matrix"
    assert verdict.priority == "severity S2: impact medium (rule vpn-down) × urgency high (Importance: high)"


def test_x_priority_5_and_no_rule_lands_per_the_matrix_with_impact_counted_medium():
    verdict = classify(mail(headers=(("X-Priority", "5 (Lowest)"),)), RULES, MATRIX)
    assert verdict.severity is Severity.S4                  # medium × low
    assert (verdict.impact, verdict.urgency) == (None, Level.LOW)
    assert verdict.priority == "severity S4: impact medium (not stated) × urgency low (X-Priority: 5 (Lowest))"


@pytest.mark.parametrize("name, value, level", [
    ("Importance", "High", Level.HIGH), ("Importance", "normal", Level.MEDIUM), ("Importance", "low", Level.LOW),
    ("X-Priority", "1 (Highest)", Level.HIGH), ("X-Priority", "2", Level.HIGH), ("X-Priority", "3 (Normal)",
                                                                                  Level.MEDIUM),
    ("X-Priority", "4 (Low)", Level.LOW), ("Priority", "urgent", Level.HIGH), ("Priority", "non-urgent", Level.LOW),
    ("Priority", "normal", Level.MEDIUM),
])
def test_each_header_a_client_writes_states_urgency(name: str, value: str, level: Level):
    assert urgency_header(mail(headers=((name, value),))).level is level


@pytest.mark.parametrize("headers", [(("X-Priority", "9"),), (("Importance", "very"),), (("Priority", ""),), ()])
def test_headers_that_say_nothing_understood_state_no_urgency(headers):
    verdict = classify(mail(headers=headers), RULES, MATRIX)
    assert verdict.urgency is None and verdict.severity is Severity.S3
    assert verdict.decided_by["severity"] == "default"      # nothing known: the rules' default, not the matrix


def test_the_first_header_understood_wins_importance_before_x_priority():
    found = urgency_header(mail(headers=(("X-Priority", "5"), ("Importance", "high"))))
    assert (found.level, found.source) == (Level.HIGH, "Importance: high")


def test_a_rules_urgency_wins_over_the_customers_header():
    verdict = classify(mail("The whole office", headers=(("Importance", "high"),)), RULES, MATRIX)
    assert (verdict.impact, verdict.urgency, verdict.severity) == (Level.HIGH, Level.LOW, Severity.S3)
    assert "urgency low (rule whole-office)" in verdict.priority


def test_a_rules_explicit_severity_wins_over_the_matrix():
    verdict = classify(mail("Outage", headers=(("Importance", "low"),)), RULES, MATRIX)
    assert verdict.severity is Severity.S1 and verdict.decided_by["severity"] == "outage"
    assert verdict.impact is Level.LOW and verdict.priority == "severity S1 (rule outage)"


@pytest.mark.parametrize("subject, headers", [("VPN broken", (("Importance", "high"),)),
                                             ("Question", (("X-Priority", "5"),)),
                                             ("The whole office", ())])
def test_without_a_matrix_the_severity_is_exactly_todays(subject, headers):
    verdict = classify(mail(subject, headers=headers), RULES)
    assert verdict.severity is Severity.S3 and verdict.decided_by["severity"] == "default"
    assert verdict.priority == "severity S3 (the rules' default)"


def test_a_rules_impact_must_be_a_level():
    with pytest.raises(ConfigError) as caught:
        rules_from_text("rules:\n  - name: x\n    when: {subject: [a]}\n    set: {impact: huge}\n", "r.yaml")
    assert "r.yaml:4: rule 'x': impact must be one of high, medium, low, not 'huge'" in str(caught.value)
