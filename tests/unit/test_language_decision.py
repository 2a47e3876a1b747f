"""The customer's language (mail.language): the pure decision, and the real
detector on the bench's short support mails."""

from __future__ import annotations

from functools import cache

import pytest
import yaml

from helpers import ROOT
from mailtriage.mail import language
from mailtriage.mail.language import AfterReply, Detector, after_reply, detect_text, new_text, of_message, primary_tag

MAILS = yaml.safe_load((ROOT / "bench" / "fixtures" / "language-mails.yaml").read_text(encoding="utf-8"))


@cache
def detector() -> Detector:
    return Detector()


def always(tag: str, confidence: float):  # type: ignore[no-untyped-def]
    return lambda text: (tag, confidence)


@pytest.mark.parametrize("header, tag", [("nl", "nl"), ("nl-NL", "nl"), ("RU", "ru"), ("de-DE, en", "de"),
                                         ("en_US", "en"), ("", None), (None, None), ("../../etc", None),
                                         ("x-klingon-1", None), ("{{ 7*7 }}", None), ("n", None)])
def test_content_language_gives_its_primary_tag_or_nothing(header, tag):
    assert primary_tag(header) == tag


def test_content_language_wins_over_the_text():
    decision = of_message("ru", "This is plainly an English sentence about a printer that jams.", always("en", 1.0))
    assert (decision.language, decision.via) == ("ru", "content-language")


def test_short_text_is_not_guessed_at():
    decision = detect_text("Thanks!", always("en", 1.0))
    assert (decision.language, decision.via) == (None, "too short")


def test_an_unsure_detection_is_not_a_guess():
    text = "Some words that could be several languages at once, really."
    assert detect_text(text, always("nl", language.MIN_CONFIDENCE - 0.01)).language is None
    assert detect_text(text, always("nl", language.MIN_CONFIDENCE)).language == "nl"


def test_the_new_text_leaves_out_quotes_signature_and_links():
    body = ("Het werkt nog steeds niet.\n\nhttps://example.test/lange/link?x=1\n\n-- \nJan Jansen\nAcme B.V.\n\n"
            "On Mon, 2 Mar 2026 at 09:00, Support <support@example.test> wrote:\n> Hello, we have opened ticket MT-1\n")
    text = new_text("Re: [MT-1] VPN", body)
    assert "Het werkt nog steeds niet." in text
    assert "Hello" not in text and "Jansen" not in text and "https" not in text


@pytest.mark.parametrize("current, pending, reply, after", [
    ("ru", None, "nl", AfterReply("ru", "nl")),                  # one Dutch reply on a Russian ticket: stays ru
    ("ru", "nl", "nl", AfterReply("nl", None, switched=True)),   # the second in a row: switched for good
    ("ru", "nl", "ru", AfterReply("ru", None)),                  # back to Russian: the run is broken
    ("ru", "nl", None, AfterReply("ru", "nl")),                  # an unsure "ok" neither counts nor breaks
    ("ru", "nl", "en", AfterReply("ru", "en")),                  # another language starts a new run
    ("ru", None, "ru", AfterReply("ru", None)),
    ("ru", None, None, AfterReply("ru", None)),
])
def test_a_reply_switches_the_ticket_only_when_the_next_one_is_in_the_same_language(current, pending, reply, after):
    assert after_reply(current, pending, reply) == after


@pytest.mark.parametrize("tag", ["en", "nl", "ru", "de", "fr"])
def test_the_detector_reads_each_short_support_mail_right(tag):
    found = [detector().of_message(None, *text.split("\n\n", 1)).language for text in MAILS[tag]]
    assert found == [tag] * len(MAILS[tag])


def test_the_detector_leaves_texts_too_short_to_tell_to_the_default():
    assert [detector().of_message(None, "", text).language for text in MAILS["short"]] == [None] * len(MAILS["short"])


def test_names_for_agents():
    assert language.name("nl") == "Dutch (nl)" and language.name("xx") == "xx"
