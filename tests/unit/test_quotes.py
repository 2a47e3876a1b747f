"""What an agent wrote: quoted history and signature cut (quotes.py, pure)."""

from __future__ import annotations

from mailtriage.mail.quotes import split_reply


def test_a_mutt_reply_keeps_the_answer_and_drops_the_quoted_notice_and_signature():
    body = ("Hello Carla,\n\n  1. unplug it\n  2. wait\n\nAlice\n\n-- \nAlice Example, L1 support\n+31 20 555\n\n"
            "On Mon, Mar 02, 2026 at 09:00:00AM +0000, Example Support wrote:\n> A new ticket was opened.\n>\n"
            ">   Ticket:     MT-1 \"Printer on fire\"\n")
    reply = split_reply(body)
    assert reply.text == "Hello Carla,\n\n  1. unplug it\n  2. wait\n\nAlice"
    assert reply.signature == "-- \nAlice Example, L1 support\n+31 20 555"
    assert reply.trimmed


def test_outlook_style_history_without_quote_marks():
    body = ("Fixed, please try again.\n\nBest regards,\nAlice\n\n________________________________\n"
            "From: Example Support <support@example.test>\nSent: Monday, March 2, 2026 09:00\n"
            "To: l1-team@example.test\nSubject: [MT-1] New ticket: Printer on fire\n\nA new ticket was opened.\n")
    assert split_reply(body).text == "Fixed, please try again.\n\nBest regards,\nAlice"


def test_german_and_dutch_headers():
    de = "Erledigt.\n\nAm 02.03.2026 um 09:00 schrieb Example Support <support@example.test>:\n> Hallo\n"
    nl = "Opgelost.\n\nOp 2 mrt. 2026 om 09:00 schreef Example Support <support@example.test>:\n> Hallo\n"
    assert split_reply(de).text == "Erledigt."
    assert split_reply(nl).text == "Opgelost."


def test_inline_answers_keep_their_context():
    body = ("On Mon, Mar 2, 2026 at 9:00 AM Carla <carla@customer.example> wrote:\n> Is it the toner?\n\n"
            "No, the fuser.\n\n> And the paper?\n\nThat is fine.\n\n-- \nAlice\n")
    assert split_reply(body).text == body.partition("\n\n-- ")[0]      # attribution and quotes included


def test_bottom_posting_keeps_only_the_answer():
    body = "On 02/03/2026 09:00, Carla wrote:\n> Is it the toner?\nNo, the fuser.\n"
    assert split_reply(body).text == "No, the fuser."


def test_a_plain_message_is_kept_whole():
    body = "Hello,\n\n- first\n- second\n\nThanks,\nCarla\n"
    reply = split_reply(body)
    assert reply.text == body.strip() and not reply.trimmed and reply.with_signature == reply.text


def test_only_history_leaves_nothing():
    assert split_reply("On Mon, Mar 2, 2026, Carla <c@customer.example> wrote:\n> hi\n").text == ""
    assert split_reply("").text == ""
