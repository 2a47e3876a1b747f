"""Signatures without a `-- ` delimiter (mail/signatures.py, issue 16): what is
cut from an agent's answer before it is relayed, and what stays — in English,
Dutch, German and Russian. The cut part is `Reply.signature`; the agents'
notices keep it (`with_signature`)."""

from __future__ import annotations

import time

from mailtriage.mail.quotes import split_keeping_forwards, split_reply
from mailtriage.mail.signatures import is_contact, is_name, is_sign_off


def cut(body: str) -> tuple[str, str]:
    reply = split_reply(body)
    return reply.text, reply.signature


# -- a name with contact lines under it --------------------------------------------------------

def test_a_name_with_contact_lines_under_it_is_a_signature():
    en = ("Hello Carla,\n\nThe printer is fixed.\n\nAlice Example\nL1 Support, Example Corp\n+31 20 555 0100\n"
          "www.example.com\n")
    nl = "De printer werkt weer.\n\nJan van der Berg\nServicedesk Voorbeeld B.V.\n020 555 0100\n"
    ru = "Принтер снова работает.\n\nИван Петров\n+7 495 555-01-00\nivan@primer.ru\n"
    assert cut(en) == ("Hello Carla,\n\nThe printer is fixed.",
                       "Alice Example\nL1 Support, Example Corp\n+31 20 555 0100\nwww.example.com")
    assert cut(nl) == ("De printer werkt weer.", "Jan van der Berg\nServicedesk Voorbeeld B.V.\n020 555 0100")
    assert cut(ru) == ("Принтер снова работает.", "Иван Петров\n+7 495 555-01-00\nivan@primer.ru")


def test_a_sign_off_and_the_name_under_it_stay_only_the_contact_lines_go():
    en = "The printer is fixed.\n\nBest regards,\nAlice Example\nalice@example.com\n+31 20 555 0100\n"
    nl = ("De printer werkt weer.\n\nMet vriendelijke groet,\nJan de Vries\nServicedesk\nT: 020 555 0100\n"
          "j.devries@voorbeeld.nl\n")
    de = "Der Drucker geht wieder.\n\nViele Grüße\nAnna Schmidt\nTel. +49 30 5550100\nwww.beispiel.de\n"
    ru = "Принтер снова работает.\n\nС уважением,\nИван Петров\nтел. +7 495 555-01-00\nivan@primer.ru\n"
    assert cut(en) == ("The printer is fixed.\n\nBest regards,\nAlice Example", "alice@example.com\n+31 20 555 0100")
    assert cut(nl) == ("De printer werkt weer.\n\nMet vriendelijke groet,\nJan de Vries",
                       "Servicedesk\nT: 020 555 0100\nj.devries@voorbeeld.nl")
    assert cut(de) == ("Der Drucker geht wieder.\n\nViele Grüße\nAnna Schmidt", "Tel. +49 30 5550100\nwww.beispiel.de")
    assert cut(ru) == ("Принтер снова работает.\n\nС уважением,\nИван Петров", "тел. +7 495 555-01-00\nivan@primer.ru")
    # The sign-off in the paragraph above: the name still stays with it.
    assert cut("Fixed.\n\nThanks,\n\nAlice Example\nalice@example.com\n") == \
        ("Fixed.\n\nThanks,\n\nAlice Example", "alice@example.com")


def test_what_is_not_a_contact_block_stays():
    kept = [
        "The printer is fixed.\n\nThank you,\nNoam\n",                          # a sign-off (talon's short_url)
        "The printer is fixed.\n\nAlice Example\nL1 Support\n",                 # a name, no contact line
        "Please read these:\n\nhttps://kb.example.com/1\nhttps://kb.example.com/2\n",     # links, no name
        "Steps:\n\n- Call +31 20 555 0100\n- Mail help@example.com\n",            # a list
        "Thanks,\nAlice Example\n\nPS: the toner arrives Monday, call +31 20 555 0100 if not.\n",  # a paragraph after
        "Der Drucker geht wieder.\n\nAnna Schmidt\nBitte rufen Sie mich unter +49 30 5550100 an.\n",  # a sentence
        "Alice Example\nalice@example.com\n+31 20 555 0100\n",                   # nothing above it: the whole mail
        "Готово.\n\nИван Петров\nДиректор по продажам компании, которая продаёт очень много принтеров\n"
        "+7 495 555-01-00\n",                                                   # a line too long for a signature
    ]
    for body in kept:
        reply = split_reply(body)
        assert (reply.text, reply.signature) == (body.strip(), ""), body


# -- a row of dashes above short contact lines -------------------------------------------------------

def test_a_row_of_dashes_above_short_contact_lines_is_a_signature():
    de = "Der Drucker geht wieder.\n\n-----------\nAnna Schmidt\nBeispiel GmbH\nTel. +49 30 5550100\n"
    en = ("Works again.\n\n----------------\n\nLOGO\n\nAlice Example\n\nt. 555-931-0702\n\nskype: alice.example\n\n"
          "http://example.com/\n")
    assert cut(de) == ("Der Drucker geht wieder.", "-----------\nAnna Schmidt\nBeispiel GmbH\nTel. +49 30 5550100")
    assert cut(en)[0] == "Works again." and cut(en)[1].startswith("----------------\n\nLOGO")


def test_a_row_of_dashes_above_content_stays():
    table = "Results:\n\n----------\nhost1 10.0.0.1\nhost2 10.0.0.2\n"               # no contact data
    log = "See the log:\n\n-----\nERROR at 12:00:01 on https://x.example/y failed.\nRetry failed.\n"     # sentences
    long = "Hi.\n\n-----\n" + "".join(f"Line {n}\n" for n in range(12)) + "alice@example.com\n"   # over 11 lines
    for body in (table, log, long):
        assert cut(body)[1] == "", body
    assert cut(table)[0] == "Results:\n\n----------\nhost1 10.0.0.1\nhost2 10.0.0.2"


# -- a name above a mobile tagline ---------------------------------------------------------------

def test_a_name_alone_above_a_mobile_tagline_goes_with_it():
    assert cut("Works now.\n\nStavros Example\nvia mobile\n") == ("Works now.", "Stavros Example\nvia mobile")
    assert cut("Принтер работает.\n\nИван Петров\nОтправлено с iPhone\n") == \
        ("Принтер работает.", "Иван Петров\nОтправлено с iPhone")
    assert cut("Läuft wieder.\n\nAnna Schmidt\nGesendet von meinem iPhone\n") == \
        ("Läuft wieder.", "Anna Schmidt\nGesendet von meinem iPhone")
    # After a sign-off the name stays; text right above (no blank line) is not a name alone.
    assert cut("Works now.\n\nCheers,\nStavros Example\nvia mobile\n") == \
        ("Works now.\n\nCheers,\nStavros Example", "via mobile")
    assert cut("Here is another email\n\nSent from my iPhone\n") == ("Here is another email", "Sent from my iPhone")
    assert cut("Stavros Example\nvia mobile\n") == ("Stavros Example", "via mobile")


# -- the agents' notices keep the signature; a mail that is only a signature is kept -----------------

def test_the_agents_notice_keeps_the_cut_signature():
    body = "The printer is fixed.\n\nAlice Example\nalice@example.com\n+31 20 555 0100\n"
    reply = split_keeping_forwards(body, "Re: Printer")
    assert reply.with_signature == body.strip() and reply.text == "The printer is fixed." and reply.trimmed
    assert not reply.history_cut                     # the notice does not say "(quoted history cut)"
    history = "On Mon, 2 Mar 2026 at 09:00, Support <s@example.test> wrote:\n> Hi\n"
    quoted = split_keeping_forwards(f"{body}\n{history}", "Re: x")
    assert quoted.history_cut and quoted.with_signature == body.strip()


# -- the line classes -------------------------------------------------------------------------------

def test_line_classes():
    assert is_name("Gina Example") and is_name("Jan van der Berg") and is_name("Иван Петров")
    assert not is_name("Here is another email") and not is_name("Alice") and not is_name("Best Regards")
    assert is_sign_off("Thanks,") and is_sign_off("Met vriendelijke groet,") and is_sign_off("С уважением,")
    assert is_sign_off("Mit freundlichen Grüßen") and not is_sign_off("Thanksgiving is on Thursday")
    assert is_contact("(555) 346-9947") and is_contact("Tel.: +49 30 5550100") and is_contact("skype: alice")
    assert is_contact("www.example.com") and is_contact("gina@example.com")
    assert not is_contact("2026") and not is_contact("Please call +31 20 555 0100 tomorrow morning")


# -- hostile input --------------------------------------------------------------------------------------

def test_hostile_tails_take_linear_time():
    # About 100,000 lines or characters each: quadratic work would take minutes, linear takes well under a second.
    bodies = [
        "x\n\n" + "-" * 100_000,
        "x\n\n" + "Aa " * 100_000 + "\n" + "1" * 100_000,
        "x\n\n" + "a@" * 100_000 + "\n+" + "1 " * 100_000,
        "x\n\n" + "Alice Example\n" * 50_000 + "alice@example.com\n",
        "x\n\n" + "-----\n" * 50_000,
        "x\n\n" + "\n" * 100_000 + "Alice Example\nalice@example.com\n",
        "Thanks,\n" * 50_000 + "Alice Example\n+31 20 555 0100\n",
        "x\n\n" + "via " * 100_000 + "mobile\n" + "Отправлено с " + "я " * 100_000,
        "Готово.\n\n" + "От: a\nКому: b\n" * 20_000,
        "Готово.\n\n" + "От: a\n" * 20_000 + "Кому: b\n",
        "Готово.\n\n" + ("1 " * 10_000 + "написал(а):\n") * 20,
    ]
    for body in bodies:
        started = time.process_time()
        split_reply(body)
        split_keeping_forwards(body, "Fwd: x")
        assert time.process_time() - started < 2.0, body[:40]
