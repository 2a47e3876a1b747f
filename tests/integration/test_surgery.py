"""Ticket surgery by mail (issue 16): an agent's `#merge MT-n` and `#split`,
typed in a real mutt reply to our notice, believed by the MX's
Authentication-Results; an outsider's `#merge` does nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from helpers import eml, make_site
from servers import SMTP_PORT, wait_for
from test_agent_mutt import as_mbox

T0, T1, T2, T3, T4 = ("2026-03-02T09:00:00+00:00", "2026-03-02T09:20:00+00:00", "2026-03-02T09:30:00+00:00",
                      "2026-03-02T09:40:00+00:00", "2026-03-02T09:50:00+00:00")
AUTH = (b"Authentication-Results: mx.example.test; dkim=pass header.d=example.test; "
        b"spf=pass smtp.mailfrom=alice@example.test\r\n")


def _site(tmp_path):  # type: ignore[no-untyped-def]
    return make_site(tmp_path / "site", smtp_out=f"{{host: 127.0.0.1, port: {SMTP_PORT}}}",
                     agent_notices="[new, reply, note, assigned, tier]")


def _answer(site, tmp_path, smtp_sink, mutt, notice, text: str, now: str, *, auth: bool = True) -> str:  # type: ignore[no-untyped-def]
    """Alice answers `notice` with mutt; the MX adds its verdict; we ingest it."""
    mbox = tmp_path / "notice.mbox"
    mbox.write_bytes(as_mbox(notice.raw))
    smtp_sink.clear()
    mutt.reply(mbox, text, from_="Alice <alice@example.test>", extra=("set hostname=example.test",))
    [sent] = wait_for(lambda: list(smtp_sink))
    assert sent.msg["In-Reply-To"] == notice.msg["Message-ID"]
    smtp_sink.clear()
    code, out, err = site.cli("ingest", now=now, stdin=(AUTH if auth else b"") + sent.raw)
    assert code == 0, err
    site.ok("outbox", "flush", now=now)
    return out.strip()


def _notice(smtp_sink, ref: str, first_line: str):  # type: ignore[no-untyped-def]
    return next(m for m in smtp_sink if m.rcpt_tos == ["l1-team@example.test"] and f"[{ref}]" in m.msg["Subject"]
                and m.msg.get_content().lstrip().startswith(first_line))


def test_merge_by_mutt_moves_the_mail_keeps_the_earlier_clock_and_redirects_the_tag(tmp_path, smtp_sink, mutt):
    site = _site(tmp_path)
    assert site.cli("ingest", now=T0, stdin=eml("Printer on fire", message_id="<c-1@customer.example>"))[1] \
        .strip() == "MT-1 new"
    assert site.cli("ingest", now=T1, stdin=eml("Printer still burning", "Anyone?",
                                                message_id="<c-2@customer.example>"))[1].strip() == "MT-2 new"
    site.ok("outbox", "flush", now=T1)
    notice = _notice(smtp_sink, "MT-2", "New ticket")
    [ack_one] = [m for m in smtp_sink if m.rcpt_tos == ["carla@customer.example"] and "[MT-1]" in m.msg["Subject"]]

    # Alice answers MT-2's notice: MT-1 (the older one) joins MT-2.
    assert _answer(site, tmp_path, smtp_sink, mutt, notice, "#merge MT-1", T2) == "MT-2 reply"
    survivor, merged = site.ticket("MT-2"), site.ticket("MT-1")
    assert [m["message_id"] for m in survivor["messages"] if m["kind"] == "customer"] == \
        ["<c-1@customer.example>", "<c-2@customer.example>"]
    assert merged["messages"] == []
    assert (merged["status"], merged["merged_into"]) == ("closed", "MT-2")
    [on_survivor] = [e for e in survivor["events"] if e["type"] == "merged"]
    [on_merged] = [e for e in merged["events"] if e["type"] == "merged"]
    assert on_survivor["detail"].startswith("MT-1 merged into this ticket by alice@example.test")
    assert "first response: from MT-1" in on_survivor["detail"]
    assert on_merged["detail"].startswith("merged into MT-2 by alice@example.test (was new)")
    assert [e["type"] for e in merged["events"]][:1] == ["created"]       # MT-1's history stays on MT-1
    # The earlier deadline: MT-1's clock (20 minutes older) against MT-2's target.
    assert survivor["first_response_due"] == "2026-03-02T10:00:00+00:00"
    assert survivor["participants"] == ["carla@customer.example"]
    assert [m.rcpt_tos for m in smtp_sink] == []                  # a command-only answer writes to nobody

    explained = site.ok("sla", "explain", "MT-2", now=T2)
    assert "clock history:" in explained
    assert "merged MT-1 into this ticket: first response: from MT-1 (30m used there, 10m here)" in explained
    data = json.loads(site.ok("sla", "explain", "MT-2", "--json", now=T2))
    [first] = [c for c in data["clocks"] if c["name"] == "first_response"]
    assert first["used"] == "30m" and first["segments"][0]["from"] == "2026-03-02T09:00:00+00:00"

    # Later mail to MT-1's tag (no References) lands in the survivor.
    later = eml("Re: [MT-1] Printer on fire", "It is out now.", message_id="<c-3@customer.example>")
    assert site.cli("ingest", now=T3, stdin=later)[1].strip() == "MT-2 reply"
    [message] = [m for m in site.ticket("MT-2")["messages"] if m["message_id"] == "<c-3@customer.example>"]
    assert message["threaded_via"] == "tag" and "MT-1 was merged into MT-2" in message["thread_evidence"]
    # A reply to MT-1's acknowledgement (no tag, References only) too.
    by_refs = eml("Re: your message", "Still smoking.", message_id="<c-4@customer.example>",
                  in_reply_to=ack_one.msg["Message-ID"], references=ack_one.msg["Message-ID"])
    assert site.cli("ingest", now=T4, stdin=by_refs)[1].strip() == "MT-2 reply"


def test_merge_errors_go_back_to_the_agent(tmp_path, smtp_sink, mutt):
    site = _site(tmp_path)
    site.cli("ingest", now=T0, stdin=eml("Printer on fire", message_id="<c-1@customer.example>"))
    site.ok("outbox", "flush", now=T0)
    notice = _notice(smtp_sink, "MT-1", "New ticket")
    mbox = tmp_path / "notice.mbox"
    mbox.write_bytes(as_mbox(notice.raw))
    smtp_sink.clear()
    mutt.reply(mbox, "#merge MT-1\n#merge MT-99", from_="Alice <alice@example.test>",
               extra=("set hostname=example.test",))
    [sent] = wait_for(lambda: list(smtp_sink))
    smtp_sink.clear()
    assert site.cli("ingest", now=T1, stdin=AUTH + sent.raw)[1].strip() == "MT-1 reply"
    site.ok("outbox", "flush", now=T1)
    [error] = wait_for(lambda: list(smtp_sink))
    assert error.rcpt_tos == ["alice@example.test"]
    text = error.msg.get_content()
    assert "MT-1 is this ticket: a ticket cannot be merged into itself" in text
    assert "there is no ticket MT-99" in text
    ticket = site.ticket("MT-1")
    assert ticket["status"] == "new" and not [e for e in ticket["events"] if e["type"] == "merged"]


def test_an_outsiders_merge_does_nothing(tmp_path, smtp_sink, mutt):
    site = _site(tmp_path)
    site.cli("ingest", now=T0, stdin=eml("Printer on fire", message_id="<c-1@customer.example>"))
    site.cli("ingest", now=T1, stdin=eml("VPN down", sender="dave@other.example",
                                         message_id="<d-1@other.example>"))
    site.ok("outbox", "flush", now=T1)
    notice = _notice(smtp_sink, "MT-1", "New ticket")
    # From: says Alice, but no Authentication-Results of our MX vouches for it.
    assert _answer(site, tmp_path, smtp_sink, mutt, notice, "#merge MT-2", T2, auth=False) == "MT-1 reply"
    # And the customer herself, on her own ticket.
    mine = eml("Re: [MT-1] Printer on fire", "#merge MT-2\nplease", message_id="<c-2@customer.example>")
    assert site.cli("ingest", now=T3, stdin=mine)[1].strip() == "MT-1 reply"
    one, two = site.ticket("MT-1"), site.ticket("MT-2")
    assert two["status"] == "new" and two["merged_into"] is None
    assert [m["message_id"] for m in two["messages"]] == ["<d-1@other.example>"]
    assert not [e for e in one["events"] + two["events"] if e["type"] == "merged"]
    refused = [e["detail"] for e in one["events"] if e["type"] == "command-refused"]
    assert len(refused) == 2 and all("only an authenticated agent's mail runs commands" in r for r in refused)
    assert [e["type"] for e in one["events"]].count("agent-unverified") == 1


def test_split_by_mutt_moves_the_answered_message_and_its_thread_to_a_new_ticket(tmp_path, smtp_sink, mutt):
    site = _site(tmp_path)
    assert site.cli("ingest", now=T0, stdin=eml("VPN down", "Nobody can connect.",
                                                message_id="<c-1@customer.example>"))[1].strip() == "MT-1 new"
    site.ok("outbox", "flush", now=T0)
    [ack] = [m for m in smtp_sink if m.rcpt_tos == ["carla@customer.example"]]
    ack_id = ack.msg["Message-ID"]
    second = eml("Re: [MT-1] VPN down", "Also: the printer on floor 2 prints blank pages.",
                 message_id="<c-2@customer.example>", in_reply_to=ack_id,
                 references=f"<c-1@customer.example> {ack_id}")
    assert site.cli("ingest", now=T1, stdin=second)[1].strip() == "MT-1 reply"
    third = eml("Re: [MT-1] VPN down", "It is the HP one.", message_id="<c-3@customer.example>",
                in_reply_to="<c-2@customer.example>", references=f"<c-1@customer.example> {ack_id} <c-2@customer.example>")
    assert site.cli("ingest", now=T2, stdin=third)[1].strip() == "MT-1 reply"
    site.ok("outbox", "flush", now=T2)
    notice = next(m for m in smtp_sink if m.rcpt_tos == ["l1-team@example.test"]
                  and m.msg["In-Reply-To"] == "<c-2@customer.example>")

    assert _answer(site, tmp_path, smtp_sink, mutt, notice, "#split", T3) == "MT-1 reply"
    source, new = site.ticket("MT-1"), site.ticket("MT-2")
    assert [m["message_id"] for m in source["messages"] if m["kind"] == "customer"] == ["<c-1@customer.example>"]
    assert [m["message_id"] for m in new["messages"]] == ["<c-2@customer.example>", "<c-3@customer.example>"]
    assert (new["requester"], new["status"], new["subject"]) == ("carla@customer.example", "new", "VPN down")
    [split_here] = [e["detail"] for e in source["events"] if e["type"] == "split"]
    assert split_here.startswith("MT-2 split off by alice@example.test: 2 message(s) moved there")
    assert new["events"][0]["type"] == "created" and new["events"][0]["detail"].startswith(
        "split off MT-1 by alice@example.test: 2 message(s) moved")
    # The clocks start at the moved message's arrival (09:20), S3 in the office calendar: 1h.
    assert new["created_at"] == T1 and new["first_response_due"] == "2026-03-02T10:20:00+00:00"
    explained = site.ok("sla", "explain", "MT-2", now=T3)
    assert f"{T1}  started at the arrival of the message split off MT-1" in explained
    assert "split off MT-1" in explained

    # The customer is told the new reference, threaded to her message; the team hears of it.
    customer = [m for m in smtp_sink if m.rcpt_tos == ["carla@customer.example"]]
    [told] = customer
    assert "[MT-2]" in told.msg["Subject"] and told.msg["In-Reply-To"] == "<c-2@customer.example>"
    assert any(m.rcpt_tos == ["l1-team@example.test"] and "[MT-2]" in m.msg["Subject"] for m in smtp_sink)
    # Her reply to it, and one to the moved thread, stay in the new ticket.
    reply = eml("Re: [MT-2] VPN down", "Thanks.", message_id="<c-4@customer.example>",
                in_reply_to=told.msg["Message-ID"], references=f"<c-2@customer.example> {told.msg['Message-ID']}")
    assert site.cli("ingest", now=T4, stdin=reply)[1].strip() == "MT-2 reply"

    # A reply that refers to messages on both sides does not undo the split (no merge): it goes to the
    # ticket of the newest message it refers to — its In-Reply-To — and says why.
    refs = f"<c-1@customer.example> {ack_id} <c-2@customer.example> <c-3@customer.example>"
    both = eml("Re: VPN down", "The printer works again, the VPN not.", message_id="<c-5@customer.example>",
               in_reply_to="<c-3@customer.example>", references=refs)
    assert site.cli("ingest", now=T4, stdin=both)[1].strip() == "MT-2 reply"
    back = eml("Re: VPN down", "Back to the VPN.", message_id="<c-6@customer.example>", in_reply_to=ack_id,
               references=f"<c-3@customer.example> <c-1@customer.example> {ack_id}")
    assert site.cli("ingest", now=T4, stdin=back)[1].strip() == "MT-1 reply"
    one, two = site.ticket("MT-1"), site.ticket("MT-2")
    assert (one["merged_into"], two["merged_into"], two["status"]) == (None, None, "new")
    assert not [e for e in one["events"] + two["events"] if e["type"] == "merged"]
    [moved] = [m for m in two["messages"] if m["message_id"] == "<c-5@customer.example>"]
    assert moved["thread_evidence"].endswith(
        "; not merged with MT-1: split apart by #split, so it goes to MT-2, the ticket of <c-3@customer.example>, "
        "the newest message it refers to")
    assert [m["message_id"] for m in one["messages"] if m["kind"] == "customer"] == [
        "<c-1@customer.example>", "<c-6@customer.example>"]


def test_split_needs_a_message_to_move(tmp_path, smtp_sink, mutt):
    site = _site(tmp_path)
    site.cli("ingest", now=T0, stdin=eml("VPN down", message_id="<c-1@customer.example>"))
    site.ok("outbox", "flush", now=T0)
    notice = _notice(smtp_sink, "MT-1", "New ticket")
    assert _answer(site, tmp_path, smtp_sink, mutt, notice, "#split", T1) == "MT-1 reply"
    [error] = [m for m in smtp_sink if m.rcpt_tos == ["alice@example.test"]]
    assert "first message" in error.msg.get_content()
    assert len(site.tickets()) == 1


def test_a_ticket_split_off_history_stays_history_for_the_sweep(tmp_path):
    site = _site(tmp_path)
    maildir = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True)
    old = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)          # two months before T0
    (maildir / "cur" / "1767603600.M1P1.mx:2,S").write_bytes(
        eml("VPN down", "Nobody can connect.", message_id="<h-1@customer.example>", date=old))
    (maildir / "cur" / "1767607200.M2P1.mx:2,S").write_bytes(
        eml("Re: VPN down", "Also: the printer prints blank pages.", message_id="<h-2@customer.example>",
            in_reply_to="<h-1@customer.example>", references="<h-1@customer.example>",
            date=old + timedelta(hours=1)))
    site.ok("import", str(maildir), now=T0)
    # Alice, today, splits the printer off (her client answers the customer's mail itself).
    split = eml("Re: VPN down", "#split", sender="Alice <alice@example.test>", message_id="<a-1@example.test>",
                in_reply_to="<h-2@customer.example>", references="<h-1@customer.example> <h-2@customer.example>",
                date=datetime.fromisoformat(T1))
    assert site.cli("ingest", now=T1, stdin=AUTH + split)[1].strip() == "MT-1 reply"
    new = site.ticket("MT-2")
    assert [m["message_id"] for m in new["messages"]] == ["<h-2@customer.example>"]
    assert "so this ticket is too" in site.ok("sla", "explain", "MT-2", now=T1)

    # The sweep records the targets missed in January and announces none of them.
    before = json.loads(site.ok("outbox", "list", "--json"))
    site.ok("sla", "tick", now=T2)
    assert json.loads(site.ok("outbox", "list", "--json")) == before
    events = [e["type"] for e in site.ticket("MT-2")["events"]]
    assert "sla-history" in events and not {"warning", "escalated"} & set(events)
