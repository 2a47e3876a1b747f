"""Forwarded mail in the shared corpus reaches the agents whole (issue 17, item 17).

Customers forward a thread to support so that somebody reads it. The agents'
notice text is `quotes.split_keeping_forwards()`; `split_reply()` (what an
agent's answer relays) cut each of these forwards at its "Forwarded message"
line, leaving the agents "Fwd: …" with one line of text. Measured: 5 of the
corpus's 292 messages forward a message in their text (Gmail's and
Thunderbird's forward lines); the other 287 split exactly as before.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from mailtriage.mail.parse import parse
from mailtriage.mail.quotes import split_keeping_forwards, split_reply

_FORWARD_LINE = re.compile(r"^-{2,}\s*Forwarded message\s*-{2,}$", re.I | re.M)


def corpus_mail(corpus_dir: Path) -> dict[str, tuple[str, str]]:
    with (corpus_dir / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        paths = [row["path"] for row in csv.DictReader(handle)]
    found = {}
    for path in paths:
        mail = parse((corpus_dir / path).read_bytes())
        found[path] = (mail.subject, mail.body_text)
    return found


def test_every_forward_in_the_corpus_keeps_the_forwarded_text(corpus_dir: Path):
    mail = corpus_mail(corpus_dir)
    forwards = {path: item for path, item in mail.items() if _FORWARD_LINE.search(item[1])}
    assert len(forwards) == 5, sorted(forwards)
    for path, (subject, body) in forwards.items():
        last_line = [line for line in body.splitlines() if line.strip()][-1].strip()
        kept = split_keeping_forwards(body, subject).with_signature
        assert _FORWARD_LINE.search(kept) and last_line in kept, path
        assert last_line not in split_reply(body).with_signature, path      # what was lost before
    for path, (subject, body) in mail.items():
        if path not in forwards:
            assert split_keeping_forwards(body, subject) == split_reply(body), path
