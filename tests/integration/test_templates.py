"""A template that cannot render costs no mail (issue 17, item 8): `config
check` renders every template with sample data and names the line; one that
fails at run time anyway is replaced by the built-in one, the ticket opens
and the customer is acknowledged, and the error is logged at its line."""

from __future__ import annotations

import email
import email.policy

from helpers import eml, make_site

NOW = "2026-03-02T09:00:00+00:00"


def test_config_check_renders_each_template_with_sample_data_and_names_the_line(tmp_path):
    site = make_site(tmp_path / "site")
    notice = site.dir / "templates" / "agent_notice.txt"
    lines = notice.read_text().splitlines()
    number = next(n for n, line in enumerate(lines, 1) if "{{ ticket.requester }}" in line)
    notice.write_text(notice.read_text().replace("{{ ticket.requester }}", "{{ ticket.requestor }}", 1))
    code, _out, err = site.cli("config", "check")
    assert code == 2
    assert err.splitlines() == [f"{notice}:{number}: template agent_notice.txt cannot be rendered: UndefinedError: "
                                "'dict object' has no attribute 'requestor' (rendering it with sample data)"]


def test_a_template_that_fails_at_run_time_falls_back_to_the_built_in_one(tmp_path, caplog):
    site = make_site(tmp_path / "site")
    ack = site.dir / "templates" / "acknowledgement.txt"
    # Greets by first name: fine for "Anna Schmidt" (the samples), not for mail without a display name.
    ack.write_text("Subject: [{{ ref_tag }}] {{ subject }}\n\nDear {{ customer_name.split()[0] }},\n\nthanks.\n")
    assert site.ok("config", "check").startswith("ok:")
    path = site.write("a.eml", "")
    path.write_bytes(eml("Printer on fire", sender="carla@customer.example", message_id="<c-1@customer.example>"))
    code, out, _err = site.cli("ingest", str(path), now=NOW)
    assert (code, out) == (0, "MT-1 new\n")                   # not quarantined
    [logged] = [r for r in caplog.records if r.name == "mailtriage.notify.render"]
    assert logged.levelname == "ERROR"
    assert logged.getMessage() == (f"template {ack}:3: UndefinedError: list object has no element 0; this mail "
                                   "uses the built-in acknowledgement.txt instead")
    [sent] = site.outbox_files()
    msg = email.message_from_bytes(sent, policy=email.policy.default)
    assert msg["To"] == "carla@customer.example" and msg["Subject"] == "[MT-1] Printer on fire"
    assert "thank you for writing to us" in msg.get_content()   # the built-in text
    assert [e["type"] for e in site.ticket("MT-1")["events"]][:4] == ["created", "language", "classified", "acknowledged"]
