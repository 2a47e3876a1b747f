"""Reply tokens (mail.tokens): signed plus-addresses that name a ticket."""

from __future__ import annotations

import hmac

import pytest

from mailtriage.mail import tokens
from mailtriage.mail.tokens import Signer, base_address
from mailtriage.thread import ThreadFacts, decide, evidence

OURS = frozenset({"support@example.test", "support-comment@example.test"})
SIGNER = Signer(b"s3cret-for-tests", "MT", 10)


def test_an_address_signed_for_a_ticket_names_that_ticket():
    address = SIGNER.address("support@example.test", 42)
    local, _, domain = address.partition("@")
    assert domain == "example.test" and local.startswith("support+MT-42.")
    signature = local.rpartition(".")[2]
    assert len(signature) == 10 and set(signature) <= set("abcdefghijklmnopqrstuvwxyz234567")   # 50 bits
    found = SIGNER.scan([address], OURS)
    assert (found.ticket, found.address, found.bad) == (42, address.lower(), ())


def test_case_changed_by_a_client_still_verifies():
    address = SIGNER.address("support@example.test", 7).upper()
    assert SIGNER.scan([address], OURS).ticket == 7


def test_a_forged_a_truncated_and_a_moved_signature_name_nothing():
    good = SIGNER.address("support@example.test", 42)
    signature = good.partition("@")[0].rpartition(".")[2]
    forged = good.replace(signature, "a" * 10)
    truncated = good.replace(signature, signature[:9])
    moved = good.replace("MT-42", "MT-43")                     # the signature of another ticket
    bare = "support+MT-42@example.test"                          # no signature at all
    for address in (forged, truncated, moved, bare):
        found = SIGNER.scan([address], OURS)
        assert found.ticket is None and found.bad == (address.lower(),), address


def test_another_secret_does_not_verify():
    address = SIGNER.address("support@example.test", 42)
    assert Signer(b"another secret", "MT", 10).scan([address], OURS).bad == (address.lower(),)


def test_plus_addresses_that_are_no_token_are_ignored():
    found = SIGNER.scan(["support+billing@example.test", "carla+MT-42.abcdefghij@customer.example",
                         "support+XY-4.abcdefghij@example.test", "support@example.test"], OURS)
    assert found == tokens.Found()


def test_verify_compares_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    assert SIGNER.verify(5, SIGNER.signature(5)) and not SIGNER.verify(5, SIGNER.signature(5)[:-1])
    assert len(calls) == 2


def test_the_secret_stays_out_of_reprs():
    assert "s3cret" not in repr(SIGNER)


@pytest.mark.parametrize("length", [8, 16, 52])
def test_the_length_is_the_configured_one(length):
    assert len(Signer(b"k", "MT", length).signature(1)) == length


def test_base_address():
    assert base_address("support+MT-1.abc@example.test") == "support@example.test"
    assert base_address("support@example.test") == "support@example.test"


def test_a_valid_token_threads_only_when_nothing_else_does():
    facts = ThreadFacts(token_ticket=3, token_address="support+mt-3.x@example.test")
    decision = decide(facts)
    assert (decision.ticket_id, decision.via) == (3, "reply-token")
    assert "valid reply token of MT-3" in evidence(decision, facts, "MT")
    by_refs = ThreadFacts(referenced_tickets=(5,), matched=(("<a@b>", 5, "message"),), token_ticket=3)
    assert (decide(by_refs).ticket_id, decide(by_refs).via) == (5, "references")


def test_a_bad_token_threads_nothing_and_is_in_the_evidence():
    facts = ThreadFacts(bad_tokens=("support+mt-3.aaaa@example.test",))
    decision = decide(facts)
    assert (decision.ticket_id, decision.via, decision.bad_tokens) == (None, "new", facts.bad_tokens)
    assert "support+mt-3.aaaa@example.test is not valid" in evidence(decision, facts, "MT")
