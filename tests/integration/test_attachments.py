"""Attachments both ways (issue 15): an agent's file reaches the customer byte
for byte (mutt, the aiosmtpd sink); the customer's files are listed on the
agents' notice and ride along up to `agent_notice_attachments`, an inline
image with its HTML and the same Content-ID; a file name never becomes a header."""

from __future__ import annotations

import email
import email.policy
import os
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timezone

from helpers import make_site
from servers import SMTP_PORT, wait_for
from test_agent_mutt import as_mbox

NOW = "2026-03-02T09:00:00+00:00"
LATER = "2026-03-02T09:07:00+00:00"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\r\n%%EOF\r\n"          # binary, CR/LF and NUL inside
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
AUTH = (b"Authentication-Results: mx.example.test; dkim=pass header.d=example.test; "
        b"spf=pass smtp.mailfrom=alice@example.test\r\n")


def customer_mail(filename: str = "invoice.pdf") -> bytes:
    """What Thunderbird sends for an HTML mail with a pasted screenshot and a PDF."""
    msg = EmailMessage()
    msg["From"] = "Carla Customer <carla@customer.example>"
    msg["To"] = "support@example.test"
    msg["Subject"] = "Printer prints garbage"
    msg["Message-ID"] = "<c-1@customer.example>"
    msg["Date"] = format_datetime(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
    msg.set_content("It prints this (screenshot), and the invoice attached comes out wrong.")
    msg.add_alternative('<p>It prints this:</p><img src="cid:shot.1@customer.example" alt="screenshot">'
                        '<img src="https://tracker.example/pixel.gif"><script>alert(1)</script>', subtype="html")
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<shot.1@customer.example>")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename=filename)
    return msg.as_bytes()


def parts(raw: bytes) -> list[email.message.EmailMessage]:
    return list(email.message_from_bytes(raw, policy=email.policy.default).walk())


def notice_of(site) -> bytes:  # type: ignore[no-untyped-def]
    [notice] = [raw for raw in site.outbox_files() if b"l1-team@example.test" in raw.split(b"\r\n\r\n")[0]]
    return notice


def test_the_notice_lists_and_attaches_the_customers_files_the_image_with_its_content_id(tmp_path):
    site = make_site(tmp_path / "site", agent_notices="[new]")
    assert site.cli("ingest", now=NOW, stdin=customer_mail())[1].split() == ["MT-1", "new"]
    notice = notice_of(site)
    found = parts(notice)
    text = found[1].get_content()
    assert "invoice.pdf (application/pdf, 10 KB)" in text
    assert "unnamed (image/png, 3 KB) inline" in text and "NOT attached" not in text
    assert found[0].get_content_type() == "multipart/mixed"
    [related] = [p for p in found if p.get_content_type() == "multipart/related"]
    html, image = related.get_payload()
    assert 'src="cid:shot.1@customer.example"' in html.get_content()
    assert "script" not in html.get_content() and "tracker.example" not in html.get_content()
    assert image["Content-ID"] == "<shot.1@customer.example>" and image.get_payload(decode=True) == PNG
    [pdf] = [p for p in found if p.get_filename() == "invoice.pdf"]
    assert pdf.get_content_type() == "application/pdf" and pdf.get_payload(decode=True) == PDF


def test_files_over_the_limit_are_listed_not_attached_with_a_line_saying_so(tmp_path):
    site = make_site(tmp_path / "site", agent_notices="[new]")
    site.config.write_text(site.config.read_text() + "agent_notice_attachments: 5KB\n")
    site.cli("ingest", now=NOW, stdin=customer_mail())
    notice = notice_of(site)
    found = parts(notice)
    text = found[1].get_content()
    assert "unnamed (image/png, 3 KB) inline" in text                  # 3 KB fits in 5 KB …
    assert "invoice.pdf (application/pdf, 10 KB) - NOT attached" in text        # … and then 10 KB does not
    assert "1 file(s) not attached: over the 5 KB a notice carries (agent_notice_attachments)." in text
    assert not [p for p in found if p.get_filename() == "invoice.pdf"]
    assert [p["Content-ID"] for p in found if p.get_content_type() == "image/png"] == ["<shot.1@customer.example>"]


def test_a_hostile_file_name_stays_a_parameter(tmp_path):
    site = make_site(tmp_path / "site", agent_notices="[new]")
    # RFC 2231 lets a name carry any byte: CR LF and a Bcc line, and an encoded word for good measure.
    hostile = b"filename*=utf-8''x%0D%0ABcc%3A%20victim%40evil.example%0D%0A=%3Futf-8%3Fb%3FQmNj%3F=.pdf"
    site.cli("ingest", now=NOW, stdin=customer_mail().replace(b'filename="invoice.pdf"', hostile))
    notice = notice_of(site)
    assert b"Bcc" not in notice.split(b"\r\n\r\n")[0]
    [pdf] = [p for p in parts(notice) if p.get_content_type() == "application/pdf"]
    assert pdf.get_payload(decode=True) == PDF
    assert "\n" not in pdf.get_filename() and "\r" not in pdf.get_filename()
    assert [name for p in parts(notice) for name in p.keys() if name.lower() == "bcc"] == []
    assert "victim@evil.example" in parts(notice)[1].get_content()      # shown as the name it is, in the text


def test_an_agents_attachment_reaches_the_customer_byte_identical(tmp_path, smtp_sink, mutt):
    site = make_site(tmp_path / "site", smtp_out=f"{{host: 127.0.0.1, port: {SMTP_PORT}}}",
                     agent_notices="[new, reply, note, assigned, tier]")
    site.cli("ingest", now=NOW, stdin=customer_mail())
    site.ok("outbox", "flush", now=NOW)
    [notice] = [m for m in smtp_sink if m.rcpt_tos == ["l1-team@example.test"]]
    fixed = tmp_path / "printer-fixed.conf"
    content = b"# fixed\r\nduplex = off\n\x00\xff\xfe binary tail " + os.urandom(2048)
    fixed.write_bytes(content)
    mbox = tmp_path / "notice.mbox"
    mbox.write_bytes(as_mbox(notice.raw))
    smtp_sink.clear()
    mutt.reply(mbox, "Hello Carla,\n\nthe fixed config is attached.\n\nAlice", from_="Alice <alice@example.test>",
               extra=("set hostname=example.test",), attachments=(fixed,))
    [sent] = wait_for(lambda: list(smtp_sink))
    smtp_sink.clear()
    code, out, err = site.cli("ingest", now=LATER, stdin=AUTH + sent.raw)
    assert (code, out.strip()) == (0, "MT-1 reply"), err
    site.ok("outbox", "flush", now=LATER)

    [answer] = wait_for(lambda: list(smtp_sink))
    assert answer.rcpt_tos == ["carla@customer.example"]
    [file] = [p for p in answer.msg.walk() if p.get_filename() == "printer-fixed.conf"]
    assert file.get_payload(decode=True) == content
    assert "the fixed config is attached" in answer.msg.get_body(("plain",)).get_content()
    [replied] = [e["detail"] for e in site.ticket("MT-1")["events"] if e["type"] == "replied"]
    assert "with 1 attachment(s): printer-fixed.conf" in replied
