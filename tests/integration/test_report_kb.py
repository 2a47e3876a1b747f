"""`report sla` counts level 0 (issue 15): the tickets whose acknowledgement
suggested knowledge-base articles, and how many of those were resolved with
no agent reply, in the table, the JSON and the HTML page."""

from __future__ import annotations

import json

from helpers import eml
from test_knowledge_base import kb_site

NOW = "2026-03-02T09:00:00+00:00"
LATER = "2026-03-02T09:20:00+00:00"
VOUCHED = "mx.example.test; dkim=pass header.d=example.test; spf=pass smtp.mailfrom=alice@example.test"


def agent_says(site, ref: str, text: str) -> None:  # type: ignore[no-untyped-def]
    raw = eml(f"Re: [{ref}] about your mail", text, sender="Alice <alice@example.test>",
              message_id=f"<alice-{ref}@example.test>", headers={"Authentication-Results": VOUCHED})
    code, out, err = site.cli("ingest", now=LATER, stdin=raw)
    assert (code, out.split()) == (0, [ref, "reply"]), err


def test_report_sla_counts_suggestions_and_tickets_resolved_without_an_agent_reply(tmp_path, database_url):
    site = kb_site(tmp_path / "site", database=database_url)
    mails = [("VPN werkt niet sinds vanochtend", "Ik kan niet inloggen."),       # MT-1: self-help worked
             ("VPN werkt niet", "Ik kan niet inloggen op de VPN."),                # MT-2: an agent answered
             ("Our office moves on 1 May", "Thank you for the flowers!"),          # MT-3: nothing suggested
             ("VPN werkt niet meer", "Sinds gisteren.")]                           # MT-4: still open
    for number, (subject, body) in enumerate(mails, 1):
        raw = eml(subject, body, sender=f"Klant {number} <klant{number}@klant.example>",
                  message_id=f"<k-{number}@klant.example>")
        assert site.cli("ingest", now=NOW, stdin=raw)[1].split() == [f"MT-{number}", "new"]
    agent_says(site, "MT-1", "#resolve")                               # the customer said the article helped
    agent_says(site, "MT-2", "#resolve\nHello,\n\nI reset your VPN account.\n\nAlice")
    agent_says(site, "MT-3", "#resolve")
    suggested = [t["ref"] for t in map(site.ticket, ("MT-1", "MT-2", "MT-3", "MT-4"))
                 if any(e["type"] == "kb-suggested" for e in t["events"])]
    assert suggested == ["MT-1", "MT-2", "MT-4"]

    report = json.loads(site.ok("report", "sla", "--format", "json", now=LATER))
    assert report["knowledge_base"] == {"suggested": 3, "resolved_without_agent_reply": 1, "rate": 0.3333}
    table = site.ok("report", "sla", now=LATER)
    assert ("knowledge base (level 0): 3 ticket(s) got article suggestions; 1 of them (33%) were resolved "
            "with no agent reply") in table
    page = site.ok("report", "sla", "--format", "html", now=LATER)
    assert "<h2>Knowledge base (level 0)</h2>\n<p>3 ticket(s) got article suggestions; 1 of them (33%)" in page


def test_report_sla_without_a_knowledge_base_says_so(tmp_path):
    site = kb_site(tmp_path / "site")
    report = json.loads(site.ok("report", "sla", "--format", "json", now=LATER))
    assert report["knowledge_base"] == {"suggested": 0, "resolved_without_agent_reply": 0, "rate": None}
    assert "knowledge base (level 0): no ticket got article suggestions" in site.ok("report", "sla", now=LATER)
