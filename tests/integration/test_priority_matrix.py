"""Impact × urgency (issue 15): the customer's Importance/X-Priority and a
rule's impact decide the severity through `priority_matrix`, said in the
ticket's events, in `rules test` and in `explain`; a bad matrix is a
FILE:LINE problem; without a matrix nothing changes."""

from __future__ import annotations

import json

from helpers import Site, eml, make_site

NOW = "2026-03-02T09:00:00+00:00"
MATRIX = """
priority_matrix:            # rows: impact; columns: urgency high, medium, low
  high:   [S1, S2, S3]
  medium: [S2, S3, S4]
  low:    [S3, S4, S4]
"""
VPN_RULE = """rules:
  - name: vpn-down
    when: {subject_or_body: ["vpn"]}
    set: {impact: medium, tags: [vpn]}
"""


def with_matrix(site: Site, matrix: str = MATRIX) -> Site:
    site.config.write_text(site.config.read_text() + matrix)
    rules = site.dir / "rules.yaml"
    rules.write_text(rules.read_text().replace("rules:\n", VPN_RULE, 1))
    return site


def classified(ticket: dict) -> str:
    [event] = [e["detail"] for e in ticket["events"] if e["type"] == "classified"]
    return event


def test_importance_high_and_a_rules_medium_impact_give_s2_explained_in_the_events(site):
    with_matrix(site)
    mail = eml("VPN keeps dropping", "Since the update it drops every hour.", message_id="<c-1@customer.example>",
               headers={"Importance": "high"})
    assert site.cli("ingest", now=NOW, stdin=mail)[1].split() == ["MT-1", "new"]     # the MTA pipe
    ticket = site.ticket("MT-1")
    assert (ticket["severity"], ticket["impact"], ticket["urgency"]) == ("S2", "medium", "high")
    assert ticket["first_response_due"] == "2026-03-02T09:30:00+00:00"          # S2's target, not the default's
    assert "severity S2: impact medium (rule vpn-down) × urgency high (Importance: high)" in classified(ticket)


def test_x_priority_5_and_no_rule_lands_per_the_matrix(site):
    with_matrix(site)
    mail = eml("Colour of the login page", "When you have time.", message_id="<c-2@customer.example>",
               headers={"X-Priority": "5 (Lowest)"})
    path = site.dir / "low.eml"
    path.write_bytes(mail)
    assert site.ingest(path, now=NOW) == ["MT-1 new"]
    ticket = site.ticket("MT-1")
    assert (ticket["severity"], ticket["impact"], ticket["urgency"]) == ("S4", None, "low")   # medium × low
    assert "severity S4: impact medium (not stated) × urgency low (X-Priority: 5 (Lowest))" in classified(ticket)


def test_rules_test_and_explain_show_how_the_severity_was_reached(site):
    with_matrix(site)
    path = site.dir / "vpn.eml"
    path.write_bytes(eml("VPN keeps dropping", message_id="<c-3@customer.example>", headers={"Importance": "high"}))
    out = site.ok("rules", "test", str(path))
    assert "severity S2 (priority_matrix)" in out
    assert "severity S2: impact medium (rule vpn-down) × urgency high (Importance: high)" in out
    verdict = json.loads(site.ok("rules", "test", str(path), "--json"))
    assert (verdict["severity"], verdict["impact"], verdict["urgency"]) == ("S2", "medium", "high")
    explained = json.loads(site.ok("explain", str(path), "--json"))
    assert explained["verdict"]["priority"].startswith("severity S2: impact medium (rule vpn-down)")
    assert "priority: severity S2" in site.ok("explain", str(path))


def test_without_a_matrix_the_severity_is_todays_and_the_stated_urgency_is_kept(site):
    rules = site.dir / "rules.yaml"
    rules.write_text(rules.read_text().replace("rules:\n", VPN_RULE, 1))
    mail = eml("VPN keeps dropping", message_id="<c-4@customer.example>", headers={"Importance": "high"})
    site.cli("ingest", now=NOW, stdin=mail)
    ticket = site.ticket("MT-1")
    assert (ticket["severity"], ticket["impact"], ticket["urgency"]) == ("S3", "medium", "high")   # the default
    assert "severity S3 (the rules' default)" in classified(ticket)
    path = site.dir / "vpn.eml"
    path.write_bytes(mail)
    assert "severity S3 (the rules' default)  (no priority_matrix in the config)" in site.ok("rules", "test", str(path))


def test_a_bad_matrix_is_reported_at_its_line(tmp_path):
    site = make_site(tmp_path / "site")
    with_matrix(site, MATRIX.replace("[S2, S3, S4]", "[S2, S5, S4]").replace("low:    [S3, S4, S4]",
                                                                             "lo:     [S3, S4]"))
    code, _out, err = site.cli("config", "check")
    lines = site.config.read_text().splitlines()
    medium = next(n for n, line in enumerate(lines, 1) if line.startswith("  medium:"))
    assert code == 2, err
    assert f"{site.config}:{medium}: priority_matrix.medium.1: Input should be 'S1', 'S2', 'S3' or 'S4'" in err
    assert f"{site.config}:{medium + 1}: priority_matrix.lo: Input should be 'high', 'medium' or 'low'" in err
    assert f"{site.config}:{medium + 1}: priority_matrix.lo: a row holds 3 severities" in err


def test_a_matrix_without_a_row_is_reported(tmp_path):
    site = make_site(tmp_path / "site")
    with_matrix(site, MATRIX.replace("  low:    [S3, S4, S4]\n", ""))
    code, _out, err = site.cli("config", "check")
    line = next(n for n, text in enumerate(site.config.read_text().splitlines(), 1) if text.startswith("priority_"))
    assert code == 2 and f"{site.config}:{line}: priority_matrix: missing row(s) low" in err
