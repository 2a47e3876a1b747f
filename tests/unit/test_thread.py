"""Threading decisions and subject handling (pure)."""

import pytest

from mailtriage.thread import ThreadFacts, decide, display_subject, evidence, find_tag, strip_reply_prefixes


@pytest.mark.parametrize("subject, expected", [
    ("Re: Printer on fire", "Printer on fire"),
    ("RE: AW: Re[2]: Printer on fire", "Printer on fire"),
    ("SV: Skrivaren", "Skrivaren"),
    ("Antw: Printer kapot", "Printer kapot"),
    ("Ответ: Принтер", "Принтер"),
    ("Odp: Drukarka", "Drukarka"),
    ("Fwd: Re: Quote", "Quote"),
    ("Re^2: nested", "nested"),
    ("Reply needed", "Reply needed"),          # not a prefix: no colon
    ("Re:", "Re:"),                            # nothing left: keep what was there
])
def test_reply_prefixes_in_many_languages_are_stripped(subject, expected):
    assert strip_reply_prefixes(subject) == expected


def test_display_subject_drops_tag_and_prefixes():
    assert display_subject("Re: [MT-42] Printer on fire", "MT") == "Printer on fire"
    assert display_subject("", "MT") == "(no subject)"


def test_tag_is_found_case_insensitively_with_configured_prefix():
    assert find_tag("Re: [mt-42] Printer", "MT") == 42
    assert find_tag("Re: [HD-7] Printer", "HD") == 7
    assert find_tag("Re: [MT-42] Printer", "HD") is None
    assert find_tag("MT-42 without brackets", "MT") is None


def test_tag_wins_when_sender_is_a_participant():
    facts = ThreadFacts(tagged_ticket=42, sender_may_use_tag=True, referenced_tickets=(7,))
    decision = decide(facts)
    assert (decision.ticket_id, decision.via) == (42, "tag")


def test_tag_from_a_stranger_opens_a_new_ticket_and_says_so():
    decision = decide(ThreadFacts(tagged_ticket=42, sender_may_use_tag=False))
    assert decision.ticket_id is None
    assert decision.refused_tag == 42


def test_stranger_with_tag_but_real_references_still_threads_by_references():
    decision = decide(ThreadFacts(tagged_ticket=42, sender_may_use_tag=False, referenced_tickets=(5,)))
    assert (decision.ticket_id, decision.via, decision.refused_tag) == (5, "references", 42)


def test_references_then_referrers_then_new():
    assert decide(ThreadFacts(referenced_tickets=(3,))).ticket_id == 3
    assert decide(ThreadFacts(referring_tickets=(4,))).via == "referrer"
    assert decide(ThreadFacts()).via == "new"


def test_a_message_linking_two_tickets_merges_them_into_the_oldest():
    decision = decide(ThreadFacts(referenced_tickets=(9,), referring_tickets=(4,)))
    assert decision.ticket_id == 4
    assert decision.merge == (9,)


def test_tickets_split_apart_are_not_merged_back_the_newest_reference_decides():
    facts = ThreadFacts(referenced_tickets=(1, 2, 3), split_pairs=((1, 2),), newest=("<c-3@x>", 2),
                        matched=(("<c-1@x>", 1, "message"), ("<c-3@x>", 2, "message"), ("<d@x>", 3, "message")))
    decision = decide(facts)
    assert (decision.ticket_id, decision.merge, decision.kept_apart) == (2, (3,), (1,))
    assert evidence(decision, facts, "MT").endswith(
        "; merges MT-3; not merged with MT-1: split apart by #split, so it goes to MT-2, the ticket of <c-3@x>, "
        "the newest message it refers to")
    # Without a split, the oldest ticket survives and takes the others, as before.
    assert decide(ThreadFacts(referenced_tickets=(1, 2, 3), newest=("<c-3@x>", 2))).merge == (2, 3)
