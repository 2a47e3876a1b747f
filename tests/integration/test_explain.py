"""`mailtriage explain`: what would happen, with the evidence, storing nothing;
and `threaded_via` kept on every stored message (issue 16)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

from helpers import eml, make_site

NOW = "2026-03-02T09:00:00+00:00"
LATER = "2026-03-02T09:10:00+00:00"


def explain(site, raw: bytes, tmp: Path) -> dict:  # type: ignore[no-untyped-def]
    path = tmp / "explain.eml"
    path.write_bytes(raw)
    before = dump(site)
    report = json.loads(site.ok("explain", str(path), "--json", now=LATER))
    if before:                  # (on a brand-new site the first command of all creates the schema)
        assert dump(site) == before                                     # stores nothing
    return report


def dump(site) -> str:  # type: ignore[no-untyped-def]
    """Every row of the database, as SQL (the file's bytes move when SQLite checkpoints its WAL)."""
    db = site.dir / "mailtriage.db"
    if not db.exists():
        return ""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return "\n".join(connection.iterdump())


def ingest(site, raw: bytes, tmp: Path, now: str = LATER) -> str:  # type: ignore[no-untyped-def]
    path = tmp / "in.eml"
    path.write_bytes(raw)
    [line] = site.ingest(path, now=now)
    return line


def last_message(site, ref: str) -> dict:  # type: ignore[no-untyped-def]
    return site.ticket(ref)["messages"][-1]


def test_each_way_a_message_threads_is_explained_and_then_happens(tmp_path):
    site = make_site(tmp_path / "site")
    first = eml("Printer on fire", message_id="<c-1@customer.example>")
    report = explain(site, first, tmp_path)
    assert report["thread"]["ticket"] is None and report["thread"]["via"] == "new"
    assert [m["kind"] for m in report["outgoing"]] == ["acknowledgement"] and report["verdict"]["severity"]
    assert ingest(site, first, tmp_path, NOW) == "MT-1 new"
    assert last_message(site, "MT-1")["threaded_via"] == "new"

    by_refs = eml("Re: Printer on fire", "Still smoking.", message_id="<c-2@customer.example>",
                  in_reply_to="<c-1@customer.example>", references="<c-1@customer.example>")
    report = explain(site, by_refs, tmp_path)
    assert (report["thread"]["ticket"], report["thread"]["via"]) == ("MT-1", "references")
    assert "<c-1@customer.example> (a message of MT-1)" in report["thread"]["evidence"]
    assert ingest(site, by_refs, tmp_path) == "MT-1 reply"
    stored = last_message(site, "MT-1")
    assert stored["threaded_via"] == "references" and "<c-1@customer.example>" in stored["thread_evidence"]

    by_tag = eml("[MT-1] one more thing", "And it beeps.", message_id="<c-3@customer.example>")
    report = explain(site, by_tag, tmp_path)
    assert (report["thread"]["ticket"], report["thread"]["via"]) == ("MT-1", "tag")
    assert ingest(site, by_tag, tmp_path) == "MT-1 reply"

    stranger = eml("[MT-1] let me in", "Hi.", sender="mallory@evil.example", message_id="<m-1@evil.example>")
    report = explain(site, stranger, tmp_path)
    assert report["thread"]["ticket"] is None and "was not honoured" in report["thread"]["evidence"]
    assert ingest(site, stranger, tmp_path) == "MT-2 new"

    # A reply that arrives before its parent: the parent is threaded by its referrer.
    orphan_reply = eml("Re: Scanner jammed", "Any news?", sender="dan@customer.example",
                       message_id="<d-2@customer.example>", in_reply_to="<d-1@customer.example>",
                       references="<d-1@customer.example>")
    assert ingest(site, orphan_reply, tmp_path) == "MT-3 new"
    parent = eml("Scanner jammed", "It is stuck.", sender="dan@customer.example", message_id="<d-1@customer.example>")
    report = explain(site, parent, tmp_path)
    assert (report["thread"]["ticket"], report["thread"]["via"]) == ("MT-3", "referrer")
    assert report["outgoing"] == [] or all(m["kind"] != "acknowledgement" for m in report["outgoing"])
    assert ingest(site, parent, tmp_path) == "MT-3 reply"


def test_an_auto_reply_is_explained_as_automatic_with_the_header_that_says_so(tmp_path):
    site = make_site(tmp_path / "site")
    assert ingest(site, eml("Printer on fire", message_id="<c-1@customer.example>"), tmp_path, NOW) == "MT-1 new"
    away = eml("Automatic reply: Printer on fire", "Out until Monday.", message_id="<ooo@customer.example>",
               in_reply_to="<c-1@customer.example>", headers={"Auto-Submitted": "auto-replied"})
    report = explain(site, away, tmp_path)
    assert report["automatic"] == "auto-submitted"
    assert (report["thread"]["ticket"], report["thread"]["via"]) == ("MT-1", "references")
    assert report["outgoing"] == []                                     # never answered
    text = site.ok("explain", str(tmp_path / "explain.eml"), now=LATER)
    assert "automatic: auto-submitted" in text and "thread: MT-1 via references" in text
