"""parse() over every message of the shared real-world corpus.

The corpus (manifest.csv, one row per message) holds broken MIME, unknown
and lying charsets, Outlook and Apple Mail output, bounces and enmime's
low-quality samples, with CRLF and LF line endings. Every one must parse
without an exception and without reaching parse()'s last-resort guard.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest

from mailtriage.mail.parse import parse

CONTROL = re.compile("[\x00-\x1f\x7f]")


def _manifest_rows() -> list[dict[str, str]]:
    """Rows for parametrizing at collection time. The location rule is the one
    in conftest.corpus_path(); the `corpus_dir` fixture still decides skip/fail."""
    default = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
    manifest = Path(os.environ.get("MAILTRIAGE_CORPUS", default)) / "manifest.csv"
    if not manifest.is_file():
        return [{"path": "", "has_attachments": ""}]  # one test, which skips (or fails in CI)
    with manifest.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


ROWS = _manifest_rows()


@pytest.mark.parametrize("row", ROWS, ids=[row["path"] or "no-corpus" for row in ROWS])
def test_corpus_message_parses(corpus_dir: Path, row: dict[str, str]) -> None:
    raw = (corpus_dir / row["path"]).read_bytes()

    mail = parse(raw)

    assert re.fullmatch(r"<[^<>\s]+>", mail.message_id)
    assert not [d for d in mail.defects if d.startswith("parse-error")]
    for name, value in mail.headers:
        assert not CONTROL.search(name + value), (name, value)
    # The manifest's "yes" is reliable (every such message has a named or
    # attachment-disposed part); its "no" is not: we also count inline parts
    # with a filename (cpython msg_36, a DSN part with a filename, ...).
    if row["has_attachments"] == "yes":
        assert mail.attachments
