"""The knowledge base through the real commands: `mailtriage ingest` into a
test site whose config names the 30-article fixture KB, `kb search`, `kb
check`, and a daemon that rebuilds the index on SIGHUP."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import signal
import smtplib
import sqlite3
from pathlib import Path

import yaml

from daemons import daemons  # noqa: F401  (the fixture)
from helpers import ROOT, Site, eml, make_site
from servers import free_port, wait_for

NOW = "2026-03-02T09:00:00+00:00"
FIXTURES = ROOT / "tests" / "fixtures" / "kb"


def kb_site(root: Path, **kwargs) -> Site:  # type: ignore[no-untyped-def]
    site = make_site(root, **kwargs)
    shutil.copytree(FIXTURES, site.dir / "kb")
    with site.config.open("a", encoding="utf-8") as config:
        config.write("knowledge_base: kb/\n")
    return site


def bodies(site: Site) -> list[str]:
    return [email.message_from_bytes(raw, policy=email.policy.default).get_body().get_content().replace("\r\n", "\n")
            for raw in site.outbox_files()]


def event_data(site: Site, kind: str) -> list[dict]:
    with sqlite3.connect(site.dir / "mailtriage.db") as db:
        return [json.loads(row[0]) for row in db.execute("SELECT data FROM events WHERE type = ?", (kind,))]


def test_the_acknowledgement_lists_the_matching_articles_and_the_ticket_records_them(tmp_path):
    site = kb_site(tmp_path / "site")
    site.write("vpn.eml", "").write_bytes(eml("VPN werkt niet sinds vanochtend", "Ik kan niet inloggen.",
                                              sender="Anna de Vries <anna@klant.example>"))
    assert site.ingest(site.dir / "vpn.eml", now=NOW) == ["MT-1 new"]
    [body] = bodies(site)
    listed = body.split("in een van deze artikelen:\n\n", 1)[1].split("\n\n", 1)[0]
    assert listed.splitlines()[:2] == ["- VPN werkt niet", "  https://help.example.test/nl/vpn"]
    assert listed.count("\n- ") == 2                                   # three articles at most
    [event] = [e for e in site.ticket("MT-1")["events"] if e["type"] == "kb-suggested"]
    assert event["detail"].startswith("VPN werkt niet (nl, score ")
    [data] = event_data(site, "kb-suggested")
    assert [a["path"] for a in data["articles"]][0] == "nl/vpn.md"
    assert data["articles"][0]["url"] == "https://help.example.test/nl/vpn"


def test_an_unrelated_mail_gets_the_plain_acknowledgement(tmp_path):
    site = kb_site(tmp_path / "site")
    site.write("a.eml", "").write_bytes(eml("Our office moves to a new address on 1 May",
                                            "See you there. Thank you for the flowers!"))
    assert site.ingest(site.dir / "a.eml", now=NOW) == ["MT-1 new"]
    [body] = bodies(site)
    assert "articles" not in body and "help.example.test" not in body
    assert "will get back to you.\n\nSeverity: S" in body                 # the template without the block
    assert [e["type"] for e in site.ticket("MT-1")["events"]] == ["created", "language", "classified", "acknowledged"]


def test_article_text_never_becomes_template_source(tmp_path):
    site = kb_site(tmp_path / "site")
    (site.dir / "kb" / "en" / "hostile.md").write_text(
        "---\ntitle: \"Tablet {{ 7*7 }} {% if true %}x{% endif %} {{ ''.__class__ }}\"\n"
        "keywords: [tablet]\nurl: https://help.example.test/{{7*7}}\n---\n# Tablet\nThe tablet {{ config }}.\n")
    site.write("a.eml", "").write_bytes(eml("My tablet {{ 6*6 }} is broken", "The tablet will not start."))
    assert site.ingest(site.dir / "a.eml", now=NOW) == ["MT-1 new"]
    [body] = bodies(site)
    assert "- Tablet {{ 7*7 }} {% if true %}x{% endif %} {{ ''.__class__ }}\n" in body
    assert "  https://help.example.test/{{7*7}}\n" in body and "49" not in body


def test_a_broken_article_is_not_fatal_at_start_the_rest_still_suggest(tmp_path, caplog):
    site = kb_site(tmp_path / "site")
    (site.dir / "kb" / "nl" / "kapot.md").write_text("---\ntitle: VPN: kapot: echt\n---\nVPN werkt niet\n")
    site.write("vpn.eml", "").write_bytes(eml("VPN werkt niet sinds vanochtend", "Help."))
    code, out, _ = site.cli("ingest", str(site.dir / "vpn.eml"), now=NOW)
    assert (code, out) == (0, "MT-1 new\n")
    assert f"knowledge base: {site.dir}/kb/nl/kapot.md:2: front matter: YAML" in caplog.text   # a warning
    assert "- VPN werkt niet\n" in bodies(site)[0]


def test_kb_check_reports_each_problem_as_file_line_and_exits_2(tmp_path):
    site = kb_site(tmp_path / "site")
    assert site.ok("kb", "check") == f"{site.dir}/kb: 30 article(s) (en 10, nl 10, ru 10), 0 problem(s)\n"
    kb = site.dir / "kb"
    (kb / "nl" / "kapot.md").write_text("---\ntitle: Kapot\nurl: ftp://x\n---\n")
    (kb / "en" / "again.md").write_text("---\nlanguage: en\ntitle: Wi-Fi in the office\n---\n")
    with (kb / "en" / "huge.md").open("wb") as huge:
        huge.write(b"# Huge\n" + b"x" * (10 * 1024**2))                   # a 10 MB article
    code, out, err = site.cli("kb", "check")
    assert code == 2 and out.endswith("31 article(s) (en 11, nl 10, ru 10), 3 problem(s)\n")
    assert sorted(err.splitlines()) == [
        f"{kb}/en/huge.md:1: article is 10.0 MB, over the 1.0 MB limit: not indexed",
        f"{kb}/en/wifi.md:2: duplicate title 'Wi-Fi in the office': also {kb}/en/again.md:3",
        f"{kb}/nl/kapot.md:3: url 'ftp://x' is not one http(s) address",
    ]


def test_a_missing_knowledge_base_folder_is_a_config_problem_at_its_line(tmp_path):
    site = make_site(tmp_path / "site")
    with site.config.open("a", encoding="utf-8") as config:
        config.write("knowledge_base: no-such-kb/\n")
    line = site.config.read_text().splitlines().index("knowledge_base: no-such-kb/") + 1
    code, _, err = site.cli("config", "check")
    assert code == 2 and err.startswith(f"{site.config}:{line}: knowledge_base folder not found: ")


def test_kb_search_shows_the_ranking_with_scores(tmp_path):
    site = kb_site(tmp_path / "site")
    result = json.loads(site.ok("kb", "search", "--json", "--language", "nl", "VPN werkt niet sinds vanochtend"))
    assert result["suggested"][0]["path"] == "nl/vpn.md" and len(result["suggested"]) <= 3
    scores = [a["score"] for a in result["ranking"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > result["min_score"]
    assert any(not a["suggested"] for a in result["ranking"])
    text = site.ok("kb", "search", "VPN werkt niet sinds vanochtend")
    assert "suggested  nl  VPN werkt niet  (nl/vpn.md; named by title 'VPN werkt niet')" in text
    assert text.splitlines()[-1].startswith("acknowledgement: VPN werkt niet <https://help.example.test/nl/vpn>")
    nothing = site.ok("kb", "search", "Lunch order for Friday: pizza or sushi?")
    assert nothing.splitlines()[-1] == "acknowledgement: no articles"


def test_the_daemon_rebuilds_the_index_on_sighup(tmp_path, daemons):  # noqa: F811
    site = kb_site(tmp_path / "site", smtp_in_port=free_port())
    port = yaml.safe_load(site.config.read_text())["smtp_in"]["port"]
    daemon = daemons(site).wait_ready()
    send(port, eml("Tablet will not charge", "My tablet is dead.", message_id="<t1@customer.example>"))
    wait_for(lambda: len(bodies(site)) == 1, timeout=20)
    assert "articles may already" not in bodies(site)[0]
    (site.dir / "kb" / "en" / "tablet.md").write_text("---\ntitle: The tablet does not charge\n"
                                                     "keywords: [tablet]\nlanguage: en\n---\nUse the grey cable.\n")
    daemon.send(signal.SIGHUP)
    daemon.wait_log("configuration reloaded")
    send(port, eml("Tablet will not charge again", "Still dead.", message_id="<t2@customer.example>",
                   sender="Dora <dora@customer.example>"))
    wait_for(lambda: len(bodies(site)) == 2, timeout=20)
    assert sum("- The tablet does not charge\n" in body for body in bodies(site)) == 1


def send(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("carla@customer.example", ["support@example.test"], raw)
