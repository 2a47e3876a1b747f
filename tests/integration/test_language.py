"""The customer's language and the resolution notice, through the real
commands: mail in with `mailtriage ingest`, out through `outbox flush` to
the aiosmtpd sink, asserted on the text the customer gets."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest

from helpers import ROOT, bare, eml, make_site
from servers import SMTP_PORT

NOW = "2026-03-02T09:00:00+00:00"
LATER = "2026-03-02T09:30:00+00:00"
LATEST = "2026-03-02T10:00:00+00:00"
CORPUS = ROOT.parent / "shared" / "corpus"
TRUSTED = "mx.example.test; dkim=pass header.d=example.test header.i=@example.test"
ALICE = "Alice <alice@example.test>"

MAILS = {
    "nl": ("VPN werkt niet sinds vanochtend", "Hallo,\n\nsinds vanochtend kan ik niet meer inloggen op de VPN. "
           "Kunnen jullie even kijken?\n\nGroet,\nJan"),
    "ru": ("Не работает VPN", "Здравствуйте!\n\nС утра никто из отдела продаж не может подключиться к VPN. "
           "Посмотрите, пожалуйста.\n\nСергей"),
    "de": ("VPN geht nicht", "Hallo,\n\nseit heute Morgen kann sich niemand im Vertrieb mit dem VPN verbinden. "
           "Könnt ihr bitte nachsehen?\n\nGrüße\nKlaus"),
    "en": ("VPN is down", "Hi,\n\nsince this morning nobody in the sales team can connect to the VPN. "
           "Could you have a look?\n\nThanks,\nAnna"),
}
# What only the acknowledgement in that language says.
SAYS = {"nl": "Bedankt voor uw bericht. We hebben ticket MT-1 aangemaakt",
        "ru": "Спасибо за обращение. Мы зарегистрировали заявку MT-1",
        "en": "thank you for writing to us. We have opened ticket MT-1"}


class Desk:
    def __init__(self, root: Path):
        self.site = make_site(root, smtp_out=f"{{host: 127.0.0.1, port: {SMTP_PORT}}}")
        self.count = 0

    def ingest(self, raw: bytes, now: str = NOW, agent: bool = False) -> str:
        if agent:
            raw = f"Authentication-Results: {TRUSTED}\r\n".encode() + raw
        self.count += 1
        path = self.site.dir / f"m{self.count}.eml"
        path.write_bytes(raw)
        [line] = self.site.ingest(path, now=now)
        self.site.ok("outbox", "flush", now=now)
        return line

    def ticket(self) -> dict:
        return self.site.ticket("MT-1")


def text_of(captured) -> str:  # type: ignore[no-untyped-def]
    msg = email.message_from_bytes(captured.raw, policy=email.policy.default)
    return msg.get_body(("plain",)).get_content().replace("\r\n", "\n")


@pytest.fixture
def desk(tmp_path) -> Desk:
    return Desk(tmp_path / "site")


@pytest.mark.parametrize("language", ["nl", "ru", "de", "en"])
def test_each_customer_gets_the_acknowledgement_in_their_language(desk, smtp_sink, language):
    subject, body = MAILS[language]
    assert desk.ingest(eml(subject, body, message_id="<c-1@customer.example>")) == "MT-1 new"
    [ack] = smtp_sink
    text = text_of(ack)
    assert SAYS.get(language, SAYS["en"]) in text                   # German: the default, English
    assert desk.ticket()["language"] == language
    [event] = [e for e in desk.ticket()["events"] if e["type"] == "language"]
    assert event["detail"].startswith(f"{language}" if language not in ("nl", "ru", "de", "en") else
                                      {"nl": "Dutch", "ru": "Russian", "de": "German", "en": "English"}[language])
    assert "detected in the text" in event["detail"]
    assert ack.msg["Auto-Submitted"] == "auto-replied" and "[MT-1]" in ack.msg["Subject"]


def test_the_customers_date_is_written_in_their_language(desk, smtp_sink):
    desk.ingest(eml(*MAILS["nl"]))
    text = text_of(smtp_sink[0])
    assert "We streven ernaar uiterlijk maandag 2 maart 2026" in text


CORPUS_MAILS = [("talon/signature/emails/P/unicode_msg", "ru", SAYS["ru"]),
                ("mailman3/bad_email_3.eml", "de", SAYS["en"]),
                ("django-helpdesk/pgp.eml", "en", SAYS["en"])]


@pytest.mark.parametrize("name, language, says", CORPUS_MAILS)
def test_corpus_mails_are_acknowledged_in_their_language(desk, smtp_sink, name, language, says):
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    raw = path.read_bytes()
    if b"\nSubject:" not in raw:             # talon's fixture is a body with a From: line: make it a mail
        raw = eml("Вопрос", raw.decode("utf-8").partition("\n")[2])
    assert desk.ingest(raw).endswith(" new")
    [ack] = smtp_sink
    assert says in text_of(ack).replace("ticket MT-1 for", "ticket MT-1 for")
    assert desk.ticket()["language"] == language


def test_content_language_wins_over_the_text(desk, smtp_sink):
    desk.ingest(eml(*MAILS["en"], headers={"Content-Language": "nl-NL"}))
    assert SAYS["nl"] in text_of(smtp_sink[0])
    assert desk.ticket()["language"] == "nl"
    [event] = [e for e in desk.ticket()["events"] if e["type"] == "language"]
    assert event["detail"] == "Dutch (nl): Content-Language header"


def test_a_short_mail_gets_the_default_language_and_says_why(desk, smtp_sink):
    desk.ingest(eml("VPN", "Help!"))
    assert desk.ticket()["language"] == "en"
    [event] = [e for e in desk.ticket()["events"] if e["type"] == "language"]
    assert event["detail"].startswith("English (en): default_language, text too short")


def test_a_dutch_reply_keeps_a_russian_ticket_russian_until_the_customer_switched(desk, smtp_sink):
    desk.ingest(eml(*MAILS["ru"], message_id="<c-1@customer.example>"))
    dutch = "Het werkt nog steeds niet, ook niet na een herstart van de laptop."
    desk.ingest(eml("Re: [MT-1] Не работает VPN", dutch, message_id="<c-2@customer.example>",
                    in_reply_to="<c-1@customer.example>"), now=LATER)
    assert desk.ticket()["language"] == "ru"
    desk.ingest(eml("Re: [MT-1] Не работает VPN", "Ik heb ook de wifi geprobeerd, maar dat helpt helaas niet.",
                    message_id="<c-3@customer.example>", in_reply_to="<c-2@customer.example>"), now=LATEST)
    assert desk.ticket()["language"] == "nl"
    switched = [e["detail"] for e in desk.ticket()["events"] if e["type"] == "language"][-1]
    assert switched == "Russian (ru) → Dutch (nl): 2 customer replies in a row in it"


def test_the_agents_notice_names_the_customers_language(tmp_path, smtp_sink):
    site = make_site(tmp_path / "site", smtp_out=f"{{host: 127.0.0.1, port: {SMTP_PORT}}}", agent_notices="[new]")
    site.write("a.eml", "").write_bytes(eml(*MAILS["nl"]))
    site.ingest(site.dir / "a.eml", now=NOW)
    site.ok("outbox", "flush", now=NOW)
    [notice] = [m for m in smtp_sink if bare(m.msg["To"]) == "l1-team@example.test"]
    text = text_of(notice)
    assert "  Language:   Dutch (nl)\n" in text and "A new ticket was opened." in text      # the team's English


def resolved_ticket(desk: Desk, smtp_sink, subject: str = "Printer on fire", lang: str = "en") -> None:  # type: ignore[no-untyped-def]
    body = MAILS[lang][1] if lang != "en" else "It is smoking.\n\nCarla"
    desk.ingest(eml(subject, body, message_id="<c-1@customer.example>", cc="Dan <dan@customer.example>"))
    desk.ingest(eml("Re: [MT-1] " + subject, "Hello Carla,\n\nplease unplug it, we replaced the fuse.\n\nAlice",
                    sender=ALICE, message_id="<a-1@example.test>", in_reply_to="<c-1@customer.example>"),
                now=LATER, agent=True)
    smtp_sink.clear()
    desk.ingest(eml("Re: [MT-1] " + subject, "#resolve", sender=ALICE, message_id="<a-2@example.test>",
                    in_reply_to="<c-1@customer.example>"), now=LATEST, agent=True)


def test_resolving_by_mail_tells_the_customers_what_was_done_and_a_reply_reopens(desk, smtp_sink):
    resolved_ticket(desk, smtp_sink)
    [notice] = smtp_sink
    assert sorted(notice.rcpt_tos) == ["carla@customer.example", "dan@customer.example"]
    assert bare(notice.msg["To"]) == "carla@customer.example" and bare(notice.msg["Cc"]) == "dan@customer.example"
    assert notice.msg["Subject"] == "[MT-1] Resolved: Printer on fire"
    assert notice.msg["Auto-Submitted"] == "auto-generated"
    text = text_of(notice)
    assert "What we did:\n\n  Hello Carla,\n\n  please unplug it, we replaced the fuse." in text
    assert "simply reply to this mail:\nyour reply reopens the ticket" in text
    ticket = desk.ticket()
    assert ticket["status"] == "resolved"
    assert any(e["type"] == "resolution-sent" and "carla@customer.example" in e["detail"] for e in ticket["events"])
    answer_id = [m["message_id"] for m in ticket["messages"] if m["kind"] == "agent"][0]
    assert notice.msg["In-Reply-To"] and notice.msg["In-Reply-To"] != answer_id      # never the agent's own id
    assert "<c-1@customer.example>" in notice.msg["References"]

    reply = eml("Re: [MT-1] Resolved: Printer on fire", "It is smoking again!", message_id="<c-9@customer.example>",
                in_reply_to=notice.msg["Message-ID"], references=notice.msg["Message-ID"])
    assert desk.ingest(reply, now="2026-03-02T11:00:00+00:00") == "MT-1 reply"
    ticket = desk.ticket()
    assert ticket["status"] == "open"
    assert any(e["type"] == "status" and e["detail"].startswith("resolved → open") for e in ticket["events"])


def test_the_resolution_notice_is_in_the_customers_language(desk, smtp_sink):
    resolved_ticket(desk, smtp_sink, subject="Не работает VPN", lang="ru")
    [notice] = smtp_sink
    text = text_of(notice)
    assert notice.msg["Subject"] == "[MT-1] Решено: Не работает VPN"
    assert "Ваша заявка MT-1 «Не работает VPN» решена." in text and "please unplug it" in text
    assert "просто ответьте на это письмо:\nваш ответ снова откроет заявку" in text


def test_a_long_answer_is_trimmed_in_the_resolution_notice(desk, smtp_sink):
    desk.ingest(eml("Printer on fire", "It is smoking.", message_id="<c-1@customer.example>"))
    long = "\n".join(f"Step {n}: check the cable number {n} and the fuse beside it." for n in range(200))
    desk.ingest(eml("Re: [MT-1] Printer on fire", "#resolve\n\n" + long, sender=ALICE,
                    message_id="<a-1@example.test>", in_reply_to="<c-1@customer.example>"), now=LATER, agent=True)
    [notice] = [c for c in smtp_sink if "Resolved" in c.msg["Subject"]]
    text = text_of(notice)
    assert "Step 0:" in text and "Step 199" not in text and "  […]" in text
    assert len(text) < 2_500


def test_customer_text_never_becomes_template_source_nor_a_header(desk, smtp_sink):
    subject = "Printer {{ 7*7 }} {% if true %}x{% endif %} =?utf-8?b?DQpCY2M6IHhAZXZpbC5leGFtcGxl?="
    resolved_ticket(desk, smtp_sink, subject=subject)
    [notice] = smtp_sink
    assert notice.msg["Bcc"] is None and "x@evil.example" not in notice.rcpt_tos
    assert "{{ 7*7 }} {% if true %}x{% endif %}" in notice.msg["Subject"]
    text = text_of(notice)
    assert "{{ 7*7 }} {% if true %}x{% endif %}" in text and "49" not in text
    head = notice.raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "\r\nBcc:" not in head and "\nBcc:" not in head


def test_tickets_show_prints_the_language(desk, smtp_sink):
    desk.ingest(eml(*MAILS["nl"]))
    assert "language nl" in desk.site.ok("tickets", "show", "MT-1")
    assert json.loads(desk.site.ok("tickets", "show", "MT-1", "--json"))["language"] == "nl"


def test_config_check_renders_the_language_folders_templates(tmp_path):
    site = make_site(tmp_path / "site")
    (site.dir / "templates" / "nl" / "resolution.txt").write_text(
        "Subject: [{{ ref_tag }}] Opgelost\n\nGoedendag,\n\n{{ ticket.requestor }}\n", encoding="utf-8")
    code, out, err = site.cli("config", "check")
    assert code == 2
    assert f"{site.dir / 'templates' / 'nl' / 'resolution.txt'}:5: template nl/resolution.txt cannot be rendered" \
        in out + err


def test_init_copies_the_language_templates(tmp_path):
    site = make_site(tmp_path / "site")
    code, out, err = site.cli("init", str(tmp_path / "new"))
    assert code == 0, err
    for name in ("nl/acknowledgement.txt", "ru/acknowledgement.txt", "nl/resolution.txt", "ru/resolution.txt",
                 "resolution.txt"):
        assert (tmp_path / "new" / "templates" / name).is_file(), name
