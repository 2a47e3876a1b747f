"""What each recipient's reply means (RFC 5321: every recipient on its own)."""

from __future__ import annotations

from mailtriage.model import OutboxStatus
from mailtriage.notify import deliveries
from mailtriage.notify.deliveries import Reply

A, B, C = "anna@example.com", "bob@example.com", "cleo@example.com"
OK, BUSY, GONE = Reply(250, "2.0.0 Ok"), Reply(451, "4.2.1 busy"), Reply(550, "5.1.1 no such user")


def test_each_recipient_is_settled_by_its_own_reply():
    outcome = deliveries.settle(None, {A: OK, B: BUSY, C: GONE}, 1, last=False)
    assert (outcome.sent, outcome.deferred, outcome.failed) == ([A], [B], [C])
    assert outcome.deliveries[B] == {"status": "deferred", "reply": "451 4.2.1 busy", "attempt": 1}
    assert deliveries.still_due([A, B, C], outcome.deliveries) == [B]        # the next attempt: bob only
    assert outcome.status([A, B, C]) == OutboxStatus.PENDING
    assert deliveries.summary([A, B, C], outcome.deliveries) == "bob@example.com: 451 4.2.1 busy; " \
                                                               "cleo@example.com: 550 5.1.1 no such user"


def test_when_nobody_is_due_the_mail_is_sent_or_failed():
    first = deliveries.settle(None, {A: OK, B: BUSY}, 1, last=False)
    second = deliveries.settle(first.deliveries, {B: OK}, 2, last=False)
    assert second.sent == [B] and second.status([A, B]) == OutboxStatus.SENT
    refused = deliveries.settle(first.deliveries, {B: GONE}, 2, last=False)
    assert refused.status([A, B]) == OutboxStatus.FAILED                     # anna has it; bob never will
    assert deliveries.summary([A, B], second.deliveries) is None


def test_a_4xx_on_the_last_attempt_gives_up_and_says_so():
    outcome = deliveries.settle(None, {A: BUSY, B: Reply(None, "connection lost at DATA")}, 12, last=True)
    assert outcome.failed == [A, B]
    assert outcome.deliveries[A]["reply"] == "gave up after 12 attempts: 451 4.2.1 busy"
    assert outcome.deliveries[B]["reply"] == "gave up after 12 attempts: connection lost at DATA"


def test_retry_makes_the_failed_recipients_due_and_leaves_those_who_have_it():
    outcome = deliveries.settle(None, {A: OK, B: GONE}, 1, last=False)
    again = deliveries.forget_failed(outcome.deliveries)
    assert deliveries.still_due([A, B], again) == [B]


def test_codes_that_are_neither_2xx_nor_5xx_are_temporary():
    for reply in (Reply(421, "closing"), Reply(-1, "garbled"), Reply(None, "timed out")):
        assert not reply.accepted and not reply.permanent
