"""classify(): real rules files, real ParsedMail values, no mocks."""

from __future__ import annotations

import time

import pytest

from mailtriage.classify import RuleSet, classify, rules_from_text
from mailtriage.model import Hit, ParsedMail, Severity, Tier

RULES = r"""
rules:
  - name: outage
    when:
      subject_or_body: ["outage", "is down", "nobody can work", "не работает", "storing"]
    set: {severity: S1, tags: [outage]}
    stop: true
  - name: billing
    when: {subject: ["invoice", "factuur", "счёт"], from: ["@customer.example"]}
    set: {severity: S4, queue: billing}
  - name: vip
    when: {header: {X-Priority: ["1"]}, to: ["vip@example.test"], body: [{regex: "order\\s+#\\d+"}]}
    set: {tier: L2, assignee: alice, tags: [vip]}
  - name: ceo
    when: {from: "ceo@customer.example"}
    set: {severity: S2, tier: L3, tags: [vip, exec]}
default: {severity: S3, tier: L1, queue: support}
"""


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return rules_from_text(RULES, "rules.yaml")


def mail(subject: str = "Question", body: str = "Hello", *, sender: str = "bob@other.example",
         to: tuple[str, ...] = ("support@example.test",), cc: tuple[str, ...] = (),
         headers: tuple[tuple[str, str], ...] = ()) -> ParsedMail:
    return ParsedMail(
        message_id="<1@test>", message_id_synthesized=False, subject=subject,
        from_addr=sender, from_name="", to=to, cc=cc, reply_to=(), date=None,
        in_reply_to=(), references=(), body_text=body, headers=headers,
    )


@pytest.mark.parametrize("subject, body, matched", [
    ("VPN outage", "", "outage"),
    ("Help", "The VPN is down since 9:00", "is down"),
    ("Melding", "Er is een storing in Amsterdam", "storing"),
    ("Помогите", "Сервер не работает!", "не работает"),
    ("Помогите", "СЕРВЕР НЕ РАБОТАЕТ", "НЕ РАБОТАЕТ"),
    ("Help", "Since this morning nobody\ncan   work here", "nobody\ncan   work"),
    ("Help", "nobody\u00a0can work", "nobody\u00a0can work"),
])
def test_outage_keywords_make_s1(rules: RuleSet, subject: str, body: str, matched: str) -> None:
    verdict = classify(mail(subject, body), rules)
    assert verdict.severity is Severity.S1
    assert verdict.decided_by["severity"] == "outage"
    assert verdict.tags == ("outage",)
    assert matched in [hit.matched for hit in verdict.hits]


@pytest.mark.parametrize("body", [
    "We are restoring the backup",           # storing inside restoring
    "The download is slow",                   # no "is down"
    "This is downloading forever",            # "is down" followed by a letter
    "Сервер не работаеттт",                   # Cyrillic word continues
    "outages are listed on the status page",  # plural is another word
])
def test_keywords_respect_word_boundaries(rules: RuleSet, body: str) -> None:
    verdict = classify(mail("Question", body), rules)
    assert verdict.matched_rules == ()
    assert verdict.severity is Severity.S3


def test_keyword_next_to_cjk_and_accented_latin() -> None:
    rules = rules_from_text(
        "rules:\n"
        "  - {name: vpn, when: {body: [vpn]}, set: {tags: [vpn]}}\n"
        "  - {name: cjk, when: {body: [故障]}, set: {tags: [cjk]}}\n"
        "  - {name: fr, when: {body: [panne]}, set: {tags: [fr]}}\n"
        "  - {name: cafe, when: {body: [café]}, set: {tags: [cafe]}}\n",
        "r.yaml",
    )
    assert classify(mail(body="VPN故障了"), rules).tags == ("vpn", "cjk")
    assert classify(mail(body="服务器故障了"), rules).tags == ("cjk",)
    assert classify(mail(body="une panne générale"), rules).tags == ("fr",)
    assert classify(mail(body="dépannée"), rules).tags == ()
    # A decomposed é (e + combining accent) continues the word ...
    assert classify(mail(body="vpné"), rules).tags == ()
    # ... and matches a composed keyword.
    assert classify(mail(body="au cafe\u0301 du coin"), rules).tags == ("cafe",)


def test_stop_ends_evaluation(rules: RuleSet) -> None:
    verdict = classify(mail("Invoice: outage", "", sender="ceo@customer.example"), rules)
    assert verdict.matched_rules == ("outage",)
    assert verdict.severity is Severity.S1
    assert verdict.tier is Tier.L1 and verdict.decided_by["tier"] == "default"


def test_from_domain_and_exact_address(rules: RuleSet) -> None:
    billing = classify(mail("Factuur 2026-03", sender="anna@customer.example"), rules)
    assert billing.matched_rules == ("billing",)
    assert (billing.severity, billing.queue) == (Severity.S4, "billing")
    assert Hit("billing", "from", "@customer.example", "anna@customer.example") in billing.hits
    assert Hit("billing", "subject", "factuur", "Factuur") in billing.hits
    other = classify(mail("Invoice", sender="anna@customer.example.evil"), rules)
    assert other.matched_rules == ()
    assert classify(mail("Счёт", sender="x@sub.customer.example"), rules).matched_rules == ()
    assert classify(mail(sender="ceo@customer.example"), rules).matched_rules == ("ceo",)


def test_first_rule_per_field_wins_and_tags_add_up(rules: RuleSet) -> None:
    message = mail("Invoice", "about order #12", sender="ceo@customer.example",
                   cc=("vip@example.test",), headers=(("X-Priority", "1 (Highest)"),))
    verdict = classify(message, rules)
    assert verdict.matched_rules == ("billing", "vip", "ceo")
    assert verdict.severity is Severity.S4 and verdict.decided_by["severity"] == "billing"
    assert verdict.queue == "billing"
    assert verdict.tier is Tier.L2 and verdict.decided_by["tier"] == "vip"
    assert verdict.assignee == "alice" and verdict.decided_by["assignee"] == "vip"
    assert verdict.tags == ("vip", "exec")


def test_to_matches_cc_header_and_regex(rules: RuleSet) -> None:
    message = mail("Order", "Status of ORDER\n#4711?", cc=("vip@example.test",),
                   headers=(("x-priority", "1"),))
    verdict = classify(message, rules)
    assert verdict.matched_rules == ("vip",)
    assert verdict.hits == (
        Hit("vip", "header:X-Priority", "1", "1"),
        Hit("vip", "to", "vip@example.test", "vip@example.test"),
        Hit("vip", "body", r"order\s+#\d+", "ORDER\n#4711"),
    )


def test_every_condition_must_match(rules: RuleSet) -> None:
    without_header = mail("Order", "order #1", to=("vip@example.test",))
    assert classify(without_header, rules).matched_rules == ()


def test_default_fills_everything(rules: RuleSet) -> None:
    verdict = classify(mail(), rules)
    assert (verdict.severity, verdict.tier, verdict.queue, verdict.assignee) == (
        Severity.S3, Tier.L1, "support", None)
    assert verdict.decided_by == {"severity": "default", "tier": "default",
                                  "queue": "default", "assignee": "default"}
    assert verdict.hits == () and verdict.tags == ()


def test_default_section_is_optional() -> None:
    rules = rules_from_text("rules: []\n", "r.yaml")
    verdict = classify(mail(), rules)
    assert (verdict.severity, verdict.tier, verdict.queue) == (Severity.S3, Tier.L1, "support")


def test_verdict_serialises(rules: RuleSet) -> None:
    data = classify(mail("VPN outage"), rules).as_dict()
    assert data["severity"] == "S1"
    assert data["hits"] == [{"rule": "outage", "field": "subject_or_body",
                             "pattern": "outage", "matched": "outage"}]


def test_regex_is_case_insensitive_unless_asked() -> None:
    rules = rules_from_text(
        "rules:\n"
        "  - {name: a, when: {subject: {regex: 'urgent'}}, set: {tags: [a]}}\n"
        "  - {name: b, when: {subject: {regex: 'URGENT', case_sensitive: true}}, set: {tags: [b]}}\n",
        "r.yaml",
    )
    assert classify(mail("Urgent"), rules).tags == ("a",)
    assert classify(mail("URGENT"), rules).tags == ("a", "b")


@pytest.mark.parametrize("pattern", ["(a+)+$", "(x+x+)+y", "(a|aa)+$", "(.*a){20}$"])
def test_catastrophic_regex_runs_in_linear_time(pattern: str) -> None:
    rules = rules_from_text(f"rules:\n  - {{name: evil, when: {{body: {{regex: '{pattern}'}}}}}}\n", "r.yaml")
    # With a backtracking engine each of these takes longer than the universe;
    # RE2 answers in linear time.
    started = time.perf_counter()
    verdict = classify(mail(body="a" * 50_000 + "!"), rules)
    assert time.perf_counter() - started < 2.0
    assert verdict.matched_rules == ()


def test_huge_body_is_scanned_only_up_to_the_limit(rules: RuleSet) -> None:
    body = ("lorem ipsum dolor sit amet " * 1_200_000)[:30_000_000] + " outage"
    started = time.perf_counter()
    verdict = classify(mail("Question", body), rules)
    assert time.perf_counter() - started < 2.0
    assert verdict.matched_rules == ()           # the keyword is past max_scan_chars


def test_max_scan_chars_is_a_parameter() -> None:
    text = "rules:\n  - {name: late, when: {body: late}}\n"
    body = "x " * 100 + "late"
    assert classify(mail(body=body), rules_from_text(text, "r.yaml")).matched_rules == ("late",)
    short = rules_from_text(text, "r.yaml", max_scan_chars=50)
    assert short.max_scan_chars == 50
    assert classify(mail(body=body), short).matched_rules == ()


def test_undecodable_text_does_not_crash() -> None:
    rules = rules_from_text("rules:\n  - {name: o, when: {body: [outage]}}\n", "r.yaml")
    verdict = classify(mail("caf\udce9", "caf\udce9 outage"), rules)   # surrogateescape leftovers
    assert verdict.matched_rules == ("o",)
