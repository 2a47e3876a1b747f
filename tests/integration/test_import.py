"""`mailtriage import`: Maildir, mbox and .eml folders; idempotent; order-independent threading."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import signal
from pathlib import Path

from helpers import break_ticket_step, eml, make_site
from mailtriage.config.values import Limits
from mailtriage.pipeline import readahead

NOW = "2026-03-02T12:00:00+00:00"


def conversation(threads: int = 8) -> list[tuple[str, bytes]]:
    """(message-id, raw) for several threads; replies carry In-Reply-To and References,
    one reply quotes only its parent (no full References chain), as some clients do."""
    messages = []
    for t in range(threads):
        chain: list[str] = []
        for position in range(1 + t % 4):
            mid = f"<t{t}.m{position}@customer{t}.example>"
            references = " ".join(chain[-1:] if position == 2 else chain) or None
            messages.append((mid, eml(("Re: " if position else "") + f"Problem {t}", f"Message {position}",
                                      sender=f"user{t}@customer{t}.example", message_id=mid,
                                      in_reply_to=chain[-1] if chain else None, references=references)))
            chain.append(mid)
    return messages


def write_maildir(root: Path, messages: list[tuple[str, bytes]], order: list[int]) -> Path:
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for rank, index in enumerate(order):
        (root / "cur" / f"{rank:05d}.x:2,S").write_bytes(messages[index][1])
    return root


def groups(site) -> set[frozenset[str]]:
    """The tickets as sets of Message-IDs: what must not depend on file order."""
    found = set()
    for ticket in site.tickets():
        data = site.ticket(ticket["ref"])
        ids = frozenset(m["message_id"] for m in data["messages"])
        if ids:
            found.add(ids)
    return found


def test_any_file_order_gives_the_same_tickets(tmp_path):
    messages = conversation()
    expected = None
    for attempt, seed in enumerate((None, 1, 2)):
        order = list(range(len(messages)))
        if seed is None:
            order.reverse()                       # every reply before its original
        else:
            random.Random(seed).shuffle(order)
        site = make_site(tmp_path / f"site{attempt}")
        maildir = write_maildir(tmp_path / f"Maildir{attempt}", messages, order)
        out = site.ok("import", str(maildir), "--no-progress", now=NOW)
        assert f"{len(messages)} messages" in out
        found = groups(site)
        assert len(found) == 8                    # one ticket per thread
        expected = expected or found
        assert found == expected


def test_import_is_idempotent_and_sends_no_mail_by_default(site, tmp_path):
    maildir = write_maildir(tmp_path / "Maildir", conversation(3), list(range(6)))
    first = site.ok("import", str(maildir), "--no-progress", now=NOW)
    assert "6 messages: 3 new, 3 reply" in first
    again = site.ok("import", str(maildir), "--no-progress", now=NOW)
    assert "6 messages: 0 new, 0 reply, 6 duplicate" in again
    assert len(site.tickets()) == 3
    assert site.outbox_files() == []


def test_import_acknowledge_flag_sends_acknowledgements(site, tmp_path):
    maildir = write_maildir(tmp_path / "Maildir", conversation(3), list(range(6)))
    site.ok("import", str(maildir), "--no-progress", "--acknowledge", now=NOW)
    assert len(site.outbox_files()) == 3


def test_mbox_and_eml_folder(site, tmp_path):
    messages = conversation(2)
    mbox = tmp_path / "archive.mbox"
    with open(mbox, "wb") as handle:
        for _, raw in messages:
            body = raw.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ")
            handle.write(b"From someone@example.test Mon Mar  2 09:00:00 2026\n" + body + b"\n")
    assert "3 messages: 2 new, 1 reply" in site.ok("import", str(mbox), "--no-progress", now=NOW)

    folder = tmp_path / "emls"
    folder.mkdir()
    (folder / "one.eml").write_bytes(eml("Another problem", message_id="<solo@x.example>"))
    (folder / "ignored.pdf").write_bytes(b"%PDF-1.4")
    assert "1 messages: 1 new" in site.ok("import", str(folder), "--no-progress", now=NOW)


def test_a_broken_message_in_a_batch_is_quarantined_alone(site, tmp_path, monkeypatch):
    break_ticket_step(monkeypatch)
    maildir = write_maildir(tmp_path / "Maildir", conversation(3), list(range(6)))
    out = site.ok("import", str(maildir), "--no-progress", "--acknowledge", now=NOW)
    # New tickets fail at the ticket step and are quarantined; replies to
    # them then have nothing to thread into and fail the same way — none is lost.
    assert "6 messages" in out and "quarantined" in out
    quarantined = json.loads(site.ok("quarantine", "list", "--json"))
    assert quarantined and all(q["reason"] for q in quarantined)
    monkeypatch.undo()                         # the fix
    site.ok("quarantine", "retry", "--all", now=NOW)
    assert json.loads(site.ok("quarantine", "list", "--json")) == []
    assert len(site.tickets()) == 3


def test_one_failing_message_leaves_the_rest_of_its_batch_as_if_it_were_not_there(site, tmp_path, monkeypatch):
    """A batch is stored without savepoints first; when one message breaks, the
    batch is stored again message by message: the broken one is quarantined,
    its neighbours (before and after it, in the same batch) thread and are
    acknowledged exactly once."""
    break_ticket_step(monkeypatch, lambda mail: mail.subject == "Boom")
    messages = conversation(3)
    messages.insert(3, ("<boom@customer.example>", eml("Boom", "this one breaks the ticket step",
                                                      sender="boom@customer.example",
                                                      message_id="<boom@customer.example>")))
    maildir = write_maildir(tmp_path / "Maildir", messages, list(range(len(messages))))
    out = site.ok("import", str(maildir), "--no-progress", "--acknowledge", now=NOW)
    assert "7 messages: 3 new, 3 reply, 0 duplicate, 0 ignored, 1 quarantined" in out
    quarantined = json.loads(site.ok("quarantine", "list", "--json"))
    assert [q["reason"] for q in quarantined] == ["error:KeyError"]     # was a template's UndefinedError
    assert groups(site) == {frozenset(mid for mid, _ in messages if mid.startswith(f"<t{t}."))
                            for t in range(3)}
    acknowledgements = site.outbox_files()
    assert len(acknowledgements) == 3          # one per new ticket, none left over from the first attempt
    assert sorted(b"Problem 0" in a for a in acknowledgements) == [False, False, True]


def test_acknowledgements_to_one_sender_are_rate_limited_within_a_batch(site, tmp_path):
    """Seven new tickets from one sender in one import batch: the per-sender limit
    (5 an hour) counts the acknowledgements the batch itself made."""
    messages = [(f"<q{i}@customer.example>", eml(f"Question {i}", "How do I?", message_id=f"<q{i}@customer.example>"))
                for i in range(7)]
    maildir = write_maildir(tmp_path / "Maildir", messages, list(range(7)))
    assert "7 messages: 7 new" in site.ok("import", str(maildir), "--no-progress", "--acknowledge", now=NOW)
    assert len(site.outbox_files()) == 5
    held = [t["ref"] for t in site.tickets()
            if any(e["type"] == "not-acknowledged" and "rate limit" in e["detail"] for e in site.ticket(t["ref"])["events"])]
    assert len(held) == 2


def test_a_killed_read_ahead_worker_costs_speed_not_messages(caplog, monkeypatch):
    """The worker that parses the next batch dies (the kernel's OOM killer,
    an operator's kill): the import goes on parsing in its own process, and
    every message still comes out, parsed, in its order; the operator reads
    one warning, not one a batch."""
    raws = [(f"file:{n}", eml(f"Problem {n}", f"Message {n}", message_id=f"<m{n}@customer.example>"))
            for n in range(40)]
    # A batch hand-over racing the pool's own discovery of the death can leave a result that never
    # comes (CPython's ProcessPoolExecutor): the timeout bounds that wait, here as in an import.
    monkeypatch.setattr(readahead, "RESULT_TIMEOUT", 20.0)
    batches = readahead.batches(iter(raws), 8, Limits(), ("en", "de"))
    others = {child.pid for child in multiprocessing.active_children()}
    out = list(next(batches))                       # the first batch, parsed here; the worker has the second
    workers = [child for child in multiprocessing.active_children() if child.pid not in others]
    assert workers, "the read-ahead worker was not started"
    for worker in workers:
        os.kill(worker.pid, signal.SIGKILL)
        worker.join()
    for batch in batches:
        out.extend(batch)
    assert [p.source for p in out] == [source for source, _ in raws]
    assert [p.sha256 for p in out] == [hashlib.sha256(raw).hexdigest() for _, raw in raws]
    assert [p.mail.message_id for p in out] == [f"<m{n}@customer.example>" for n in range(40)]
    assert caplog.text.count("parsing in this process from here on") == 1
