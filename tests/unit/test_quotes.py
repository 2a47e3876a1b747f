"""What an agent wrote: quoted history and signature cut (quotes.py, pure)."""

from __future__ import annotations

from mailtriage.mail.quotes import split_keeping_forwards, split_reply


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


# -- forwards (issue 17, item 17): kept for the agents, never relayed ---------------------------

VENDOR = "The outage on router 7 is fixed since 08:40."
FORWARDS = {
    "gmail": ("Fwd: Outage", "Can you check this?\n\nCarla\n\n---------- Forwarded message ---------\n"
              "From: Vendor Support <help@vendor.example>\nDate: Mon, Mar 2, 2026 at 9:00 AM\nSubject: Outage\n"
              f"To: Carla <carla@customer.example>\n\n{VENDOR}\n"),
    "apple": ("Fwd: Outage", "See below.\n\nBegin forwarded message:\n\nFrom: Vendor Support <help@vendor.example>\n"
              "Subject: Outage\nDate: 2 March 2026 at 09:00:00 CET\nTo: Carla <carla@customer.example>\n\n"
              f"{VENDOR}\n"),
    "apple, quoted": ("Fwd: Outage", "Begin forwarded message:\n\n> From: Vendor Support <help@vendor.example>\n"
                      f"> Subject: Outage\n> Date: 2 March 2026 at 09:00:00 CET\n>\n> {VENDOR}\n"),
    "outlook": ("FW: Outage", "Please have a look.\n\n________________________________\n"
                "From: Vendor Support <help@vendor.example>\nSent: Monday, March 2, 2026 9:00 AM\n"
                f"To: Carla <carla@customer.example>\nSubject: Outage\n\n{VENDOR}\n"),
    "thunderbird, german": ("WG: Outage", "Zur Info\n\n-------- Weitergeleitete Nachricht --------\n"
                            "Betreff: \tOutage\nDatum: \tMon, 2 Mar 2026 09:00:00 +0100\n"
                            f"Von: \tVendor Support <help@vendor.example>\n\n{VENDOR}\n"),
}


def test_a_forwarded_message_is_kept_whole_for_the_agents():
    for name, (subject, body) in FORWARDS.items():
        kept = split_keeping_forwards(body, subject)
        assert VENDOR in kept.with_signature and "help@vendor.example" in kept.with_signature, name
        assert not kept.trimmed, name
        assert VENDOR not in split_reply(body).with_signature, name      # an agent's answer never relays one


def test_the_note_above_a_forward_is_still_trimmed():
    body = ("Here it is.\n\n-- \nCarla Customer\nACME\n\n---------- Forwarded message ---------\n"
            f"From: Vendor Support <help@vendor.example>\nSubject: Outage\n\n{VENDOR}\n")
    kept = split_keeping_forwards(body, "Fwd: Outage")
    assert kept.with_signature.startswith("Here it is.\n\n-- \nCarla Customer\nACME\n\n---------- Forwarded")
    assert kept.with_signature.endswith(VENDOR)


def test_history_is_still_history_in_a_reply_to_a_forward():
    outlook = ("Thanks, it works.\n\nFrom: Alice via Example Support <support@example.test>\n"
               "Sent: Monday, March 2, 2026 10:00 AM\nTo: Carla <carla@customer.example>\n"
               f"Subject: RE: [MT-1] Outage\n\nFixed.\n\n---------- Forwarded message ---------\n{VENDOR}\n")
    quoted = ("Thanks.\n\nOn Mon, Mar 2, 2026 at 9:00 AM Example Support <support@example.test> wrote:\n"
              f"> ---------- Forwarded message ---------\n> {VENDOR}\n")
    assert split_keeping_forwards(outlook, "RE: FW: Outage").with_signature == "Thanks, it works."
    assert split_keeping_forwards(outlook, "RE: [MT-1] Outage").with_signature == "Thanks, it works."
    assert split_keeping_forwards(quoted, "Re: Fwd: Outage").with_signature == "Thanks."
    plain_reply = "Fixed, thanks.\n\n________________________________\nFrom: Vendor\nSent: Monday\nSubject: Outage\n\nx\n"
    assert VENDOR not in split_keeping_forwards(plain_reply, "RE: Outage").with_signature
    assert split_keeping_forwards(plain_reply, "RE: Outage").text == "Fixed, thanks."


# -- Outlook's header block in other languages (issue 16) ----------------------------------------

def test_a_localised_outlook_header_block_starts_the_history():
    blocks = {
        "ru": "От: Support <s@example.test>\nОтправлено: 2 марта 2026 г. 9:00\nКому: Иван\nТема: RE: [MT-1] Печать",
        "de": "Von: Support <s@example.test>\nGesendet: Montag, 2. März 2026 09:00\nAn: Anna\nBetreff: AW: Druck",
        "nl": "Van: Support <s@example.test>\nVerzonden: maandag 2 maart 2026\nAan: Jan\nOnderwerp: RE: [MT-1] Printer",
        "fr": "De : Support <s@example.test>\nEnvoyé : lundi 2 mars 2026 09:00\nÀ : Marie\nObjet : RE: [MT-1] Imprimer",
    }
    for language, block in blocks.items():
        reply = split_reply(f"Done.\n\nThanks,\nAlice Example\n\n{block}\n\nA new ticket was opened.\n")
        assert reply.text == "Done.\n\nThanks,\nAlice Example" and reply.trimmed, language
    # Windows Mail writes the field values with left-to-right marks and no address (talon's windows_mail).
    windows = ("Hi. I am fine.\n\nThanks,\nAlex\n\n\nОт: Alexander L\n"
               "Отправлено: \u200eчетверг\u200e, \u200e26\u200e \u200eиюня\u200e \u200e2014\u200e г. 15:05\n"
               "Кому: Alex\n\nHello! How are you?\n")
    assert split_reply(windows).text == "Hi. I am fine.\n\nThanks,\nAlex"


def test_a_russian_attribution_starts_the_history():
    body = "Готово.\n\n2 марта 2026 г., в 9:00, Support написал(а):\n\nСтарый текст\n"
    assert split_reply(body).text == "Готово."


def test_a_lone_field_like_line_is_the_authors_text():
    for body in ("Готово.\n\nОт: меня лично\nпривет\n", "Готово.\n\nТема: принтер\nКому: всем\n",
                 "Я написал:\nвсё работает\n"):
        assert split_reply(body).text == body.strip(), body
