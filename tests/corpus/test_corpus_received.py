"""delivery_path() and the hop-count guard over every message of the shared corpus.

The corpus' 292 messages carry 303 Received headers from Postfix, sendmail,
Exim, qmail, Exchange (on premises and Online), Gmail, Sun's SIMS and a
few forgeries (mail-parser's malformed samples). Every message must give one
hop per Received header, in order, without an exception; most hops must be
read into clauses; and none of this real mail is a loop.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mailtriage.mail.guards import automatic_reasons
from mailtriage.mail.parse import parse
from mailtriage.mail.received import delivery_path, received_headers
from mailtriage.model import ParsedMail


def corpus(corpus_dir: Path) -> list[tuple[str, ParsedMail]]:
    with (corpus_dir / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [(row["path"], parse((corpus_dir / row["path"]).read_bytes())) for row in rows]


def test_every_corpus_message_gives_one_hop_per_received_header(corpus_dir: Path) -> None:
    wrong = []
    hops = read = dated = 0
    for path, mail in corpus(corpus_dir):
        headers = received_headers(mail)
        found = delivery_path(mail)
        if [hop.raw for hop in found] != list(reversed(headers)):
            wrong.append(path)
        hops += len(found)
        read += sum(1 for hop in found if hop.by)
        dated += sum(1 for hop in found if hop.date is not None)
    assert not wrong
    assert hops > 250
    # 276 and 302 of 303 today; the rest are qmail's "(qmail 123 invoked from
    # network)", which has no clauses, and Received lines broken at the source.
    assert read / hops > 0.9 and dated / hops > 0.95


def test_no_corpus_message_is_a_mail_loop(corpus_dir: Path) -> None:
    looped = [path for path, mail in corpus(corpus_dir) if "hop-count" in automatic_reasons(mail)]
    assert looped == []
