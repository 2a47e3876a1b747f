"""received: the delivery path of a message, from mail-parser's reading of its
Received headers.

The headers are real ones, copied byte for byte (folding included) from
messages of the shared corpus (/work/shared/corpus, the path is named at each),
and go through the real parse() first: delivery_path sees what explain will.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtriage.mail.parse import parse
from mailtriage.mail.received import Hop, delivery_path, received_headers
from mailtriage.model import ParsedMail

# cpython/msg_16.txt: a Sun Internet Mail Server hands a bounce to Postfix.
POSTFIX = """\
Received: from cougar.noc.ucla.edu (cougar.noc.ucla.edu [169.232.10.18])
\tby babylon.socal-raves.org (Postfix) with ESMTP id CCC2C51B84
\tfor <scr-admin@socal-raves.org>; Sun, 23 Sep 2001 20:13:54 -0700 (PDT)
Received: from sims-ms-daemon by cougar.noc.ucla.edu
 (Sun Internet Mail Server sims.3.5.2000.03.23.18.03.p10)
 id <0GK500B01D0B8Y@cougar.noc.ucla.edu> for scr-admin@socal-raves.org; Sun,
 23 Sep 2001 20:14:35 -0700 (PDT)
Received: from cougar.noc.ucla.edu
 (Sun Internet Mail Server sims.3.5.2000.03.23.18.03.p10)
 id <0GK500B01D0B8X@cougar.noc.ucla.edu>; Sun, 23 Sep 2001 20:14:35 -0700 (PDT)
"""

# mail-parser/mail_test_17.eml: sendmail submission, then an ESMTP/TLS relay,
# then an on-premises Exchange hub (other headers between them left out).
EXCHANGE = """\
Received: from apiron13.triara.com (200.57.129.98) by APCNHUB11.correo.local
 (172.18.31.175) with Microsoft SMTP Server id 14.3.498.0; Mon, 10 Oct 2022
 15:11:35 -0500
Received: from vps-051e4cda.vps.ovh.net ([152.228.133.10])  by
 apiron13.triara.com with ESMTP/TLS/ECDHE-RSA-AES128-GCM-SHA256; 10 Oct 2022
 15:11:34 -0500
Received: from vps-051e4cda.vps.ovh.net (localhost [127.0.0.1])\tby
 vps-051e4cda.vps.ovh.net (8.15.2/8.15.2/Debian-10) with ESMTP id
 29AKBWdZ005349\tfor <compliance@akaancasadebolsa.com.mx>; Mon, 10 Oct 2022
 20:11:32 GMT
Received: (from www-data@localhost)\tby vps-051e4cda.vps.ovh.net
 (8.15.2/8.15.2/Submit) id 29AKBWwn005317;\tMon, 10 Oct 2022 20:11:32 GMT
"""

# mail-parser/mail_test_1.eml: Exchange Online between two of its own servers.
EXCHANGE_ONLINE = """\
Received: from DM3NAM03FT035.eop-NAM03.prod.protection.outlook.com
 (2a01:111:f400:7e49::205) by CY4PR0601CA0051.outlook.office365.com
 (2603:10b6:910:89::28) with Microsoft SMTP Server (version=TLS1_2,
 cipher=TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384) id 15.20.1185.23 via Frontend
 Transport; Mon, 1 Oct 2018 09:49:21 +0000
"""

# django-helpdesk/pgp.eml (the five Received of 2017-11-08; ARC, DKIM and the rest left out).
GMAIL = """\
Received: by 10.25.26.207 with SMTP id a198csp5858981lfa;
        Wed, 8 Nov 2017 13:30:22 -0800 (PST)
Received: from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])
        by mx.google.com with SMTPS id i86sor2420323ioo.204.2017.11.08.13.30.21
        for <djangohelpdesk@example.com>
        (Google Transport Security);
        Wed, 08 Nov 2017 13:30:21 -0800 (PST)
Received: from mail-pf0-x233.google.com (mail-pf0-x233.google.com. [2607:f8b0:400e:c00::233])
        by gmr-mx.google.com with ESMTPS id l10si463482ioc.2.2017.11.08.13.30.21
        for <djangohelpdesk@example.com>
        (version=TLS1_2 cipher=ECDHE-RSA-AES128-GCM-SHA256 bits=128/128);
        Wed, 08 Nov 2017 13:30:21 -0800 (PST)
Received: by mail-pf0-x233.google.com with SMTP id p87so2672006pfj.3
        for <djangohelpdesk@example.com>; Wed, 08 Nov 2017 13:30:21 -0800 (PST)
Received: from [10.1.1.4] (d114-72-199-247.hum1.act.optusnet.com.au. [114.72.199.247])
        by smtp.gmail.com with ESMTPSA id u131sm8656745pgc.89.2017.11.08.13.30.18
        for <djangohelpdesk@example.com>
        (version=TLS1_2 cipher=ECDHE-RSA-AES128-GCM-SHA256 bits=128/128);
        Wed, 08 Nov 2017 13:30:19 -0800 (PST)
"""

# cpython/msg_25.txt: Exim 3 ("Too many hops 19 (17 max)", a loop it stopped).
EXIM3 = """\
Received: from [204.245.199.98] (helo=zinfandel.lacita.com)
\tby www.linux.org.uk with esmtp (Exim 3.13 #1)
\tid 14lYR6-0008Iv-00
\tfor linuxuser-admin@www.linux.org.uk; Fri, 06 Apr 2001 16:46:09 +0100
"""

# mail-parser/mail_test_4.eml: Exim 4 with the envelope sender in a comment.
EXIM4 = """\
Received: from host86-187-174-57.range86-187.btcentralplus.com ([86.187.174.57]:45321 helo=User)
\tby localhost.localdomain.com with esmtpa (Exim 4.87)
\t(envelope-from <anabelgonzalo@fanox.com>)
\tid 1bakrE-000291-LF; Fri, 19 Aug 2016 20:34:52 +0600
"""

# ruby-mail/error_emails/content_transfer_encoding_plain.eml: qmail writes only a comment.
QMAIL = "Received: (qmail 32179 invoked by uid 115); 28 Mar 2005 01:14:54 -0000\n"


def message(received: str) -> ParsedMail:
    head = received + "From: anna@customer.example\nSubject: Printer\nMessage-ID: <p.1@customer.example>\n"
    return parse((head + "\nIt does not print.\n").encode())


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=timezone.utc)


def test_postfix_hop_is_read_clause_by_clause() -> None:
    path = delivery_path(message(POSTFIX))
    assert len(path) == 3
    last = path[-1]                                          # the top header: the newest hop
    assert last.from_ == "cougar.noc.ucla.edu (cougar.noc.ucla.edu [169.232.10.18])"
    assert last.by == "babylon.socal-raves.org (Postfix)"
    assert last.with_ == "ESMTP"
    assert last.id == "CCC2C51B84"                           # what the Postfix log is searched for
    assert last.for_ == "<scr-admin@socal-raves.org>"
    assert last.date == utc(2001, 9, 24, 3, 13, 54)
    assert last.raw.startswith("from cougar.noc.ucla.edu (cougar") and "\n" not in last.raw


def test_the_path_runs_from_the_first_relay_to_the_last() -> None:
    path = delivery_path(message(POSTFIX))
    assert [hop.id for hop in path] == ["<0GK500B01D0B8X@cougar.noc.ucla.edu>",
                                        "<0GK500B01D0B8Y@cougar.noc.ucla.edu>", "CCC2C51B84"]
    assert path[1].from_ == "sims-ms-daemon" and path[1].for_ == "scr-admin@socal-raves.org"


def test_exchange_and_sendmail_hops() -> None:
    path = delivery_path(message(EXCHANGE))
    assert [hop.by for hop in path] == [
        "vps-051e4cda.vps.ovh.net (8.15.2/8.15.2/Submit)",
        "vps-051e4cda.vps.ovh.net (8.15.2/8.15.2/Debian-10)",
        "apiron13.triara.com",
        "APCNHUB11.correo.local (172.18.31.175)",
    ]
    submission, _, relay, hub = path
    assert submission.from_ == "" and submission.id == "29AKBWwn005317"   # "(from www-data@localhost)" is a comment
    assert relay.with_ == "ESMTP/TLS/ECDHE-RSA-AES128-GCM-SHA256" and relay.id == ""
    assert relay.date == utc(2022, 10, 10, 20, 11, 34)                   # a date without a weekday
    assert hub.from_ == "apiron13.triara.com (200.57.129.98)"
    assert (hub.with_, hub.id) == ("Microsoft SMTP Server", "14.3.498.0")
    assert hub.date == utc(2022, 10, 10, 20, 11, 35)


def test_exchange_online_keeps_its_tls_comment_in_with() -> None:
    (hop,) = delivery_path(message(EXCHANGE_ONLINE))
    assert hop.from_ == "DM3NAM03FT035.eop-NAM03.prod.protection.outlook.com (2a01:111:f400:7e49::205)"
    assert hop.by == "CY4PR0601CA0051.outlook.office365.com (2603:10b6:910:89::28)"
    # "cipher=" after "with" is not a new clause, and "via Frontend Transport" is not the id
    assert hop.with_ == "Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384)"
    assert hop.id == "15.20.1185.23"
    assert hop.date == utc(2018, 10, 1, 9, 49, 21)


def test_gmail_path_from_submission_to_the_recipients_mailbox() -> None:
    path = delivery_path(message(GMAIL))
    assert [hop.by for hop in path] == ["smtp.gmail.com", "mail-pf0-x233.google.com", "gmr-mx.google.com",
                                        "mx.google.com", "10.25.26.207"]
    assert [hop.with_ for hop in path] == ["ESMTPSA", "SMTP", "ESMTPS", "SMTPS", "SMTP"]
    first, _, _, _, mailbox = path
    assert first.from_ == "[10.1.1.4] (d114-72-199-247.hum1.act.optusnet.com.au. [114.72.199.247])"
    assert first.id == "u131sm8656745pgc.89.2017.11.08.13.30.18"
    assert first.date == utc(2017, 11, 8, 21, 30, 19)
    assert mailbox.from_ == "" and mailbox.for_ == "" and mailbox.id == "a198csp5858981lfa"
    assert all(hop.for_.startswith("<djangohelpdesk@example.com>") for hop in path[:4])


def test_exim_hops() -> None:
    (exim3,) = delivery_path(message(EXIM3))
    assert exim3.from_ == "[204.245.199.98] (helo=zinfandel.lacita.com)"
    assert (exim3.by, exim3.with_) == ("www.linux.org.uk", "esmtp (Exim 3.13 #1)")
    assert (exim3.id, exim3.for_) == ("14lYR6-0008Iv-00", "linuxuser-admin@www.linux.org.uk")
    assert exim3.date == utc(2001, 4, 6, 15, 46, 9)

    (exim4,) = delivery_path(message(EXIM4))
    assert exim4.from_ == "host86-187-174-57.range86-187.btcentralplus.com ([86.187.174.57]:45321 helo=User)"
    assert exim4.by == "localhost.localdomain.com" and exim4.id == "1bakrE-000291-LF"
    assert exim4.date == utc(2016, 8, 19, 14, 34, 52)


def test_a_qmail_comment_is_a_hop_with_only_its_date() -> None:
    (hop,) = delivery_path(message(QMAIL))
    assert (hop.from_, hop.by, hop.with_, hop.for_, hop.id) == ("", "", "", "", "")
    assert hop.date == utc(2005, 3, 28, 1, 14, 54)
    assert hop.raw == "(qmail 32179 invoked by uid 115); 28 Mar 2005 01:14:54 -0000"


def test_no_received_header_is_an_empty_path() -> None:
    assert delivery_path(message("")) == ()


def test_a_header_mail_parser_cannot_split_is_still_a_hop() -> None:
    broken = "Received: from evil.example (unclosed by mx.example; Mon, 13 May 2024 09:00:00 +0200\n"
    postfix_top = "".join(POSTFIX.splitlines(keepends=True)[:3])
    path = delivery_path(message(broken + postfix_top))
    assert len(path) == 2
    assert path[1] == Hop(from_="", by="", with_="", for_="", id="", date=None,
                          raw="from evil.example (unclosed by mx.example; Mon, 13 May 2024 09:00:00 +0200")
    assert path[0].id == "CCC2C51B84"                        # the readable one below it is unharmed


def test_an_unreadable_date_is_none() -> None:
    (hop,) = delivery_path(message("Received: from a.example by mx.example with SMTP id 1; yesterday noon\n"))
    assert (hop.from_, hop.by, hop.id) == ("a.example", "mx.example", "1")
    assert hop.date is None


def test_an_overlong_header_is_not_parsed_and_costs_nothing() -> None:
    huge = "Received: from a.example (" + "(x" * 200_000 + " by mx.example; Mon, 13 May 2024 09:00:00 +0200\n"
    mail = message(huge + EXIM3)
    started = time.perf_counter()
    path = delivery_path(mail)
    elapsed = time.perf_counter() - started
    assert len(path) == 2 and path[1].by == "" and len(path[1].raw) > 400_000
    assert path[0].by == "www.linux.org.uk"
    assert elapsed < 0.1      # mail-parser scans 0.5 to 1 µs a character: 0.2 s or more


def test_received_headers_are_newest_first() -> None:
    assert [value[:18] for value in received_headers(message(EXIM4 + EXIM3))] == [
        "from host86-187-17", "from [204.245.199."]


# Pieces of Received syntax, glued in any order: the scanner's delimiters and keywords.
PIECES = st.sampled_from(list("()[]<>\";\\ \tabyfromwithidfor=.@:-0123456789\u00e9\udc80")
                         + ["from ", " by ", " with ", " id ", " for ", "; ", "via ", "envelope-from <",
                            "Mon, 13 May 2024 09:00:00 +0200", "=?utf-8?q?x?=", "helo=", "\n "])
HEADER_TEXT = st.lists(PIECES, max_size=40).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(HEADER_TEXT, max_size=8))
def test_hostile_received_headers_never_raise_and_keep_every_hop(values: list[str]) -> None:
    head = "".join(f"Received: {value}\n" for value in values)
    mail = parse((head + "Subject: x\n\nbody\n").encode("utf-8", "surrogateescape"))
    path = delivery_path(mail)
    assert len(path) == len(received_headers(mail))
    assert [hop.raw for hop in path] == list(reversed(received_headers(mail)))
    for hop in path:
        assert hop.date is None or hop.date.tzinfo is not None
        for text in (hop.from_, hop.by, hop.with_, hop.for_, hop.id):
            assert "\n" not in text and "\r" not in text
            text.encode("utf-8")                              # no lone surrogates
