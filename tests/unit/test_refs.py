"""Ticket references as people type them (mailtriage/model.py parse_ref): what
the board's /tickets/REF, `tickets show REF` and the CLI's other REF
arguments accept. Anything else is no ref (a 404, a "no ticket"), never an
exception."""

from __future__ import annotations

import pytest

from mailtriage.model import parse_ref, ticket_ref


@pytest.mark.parametrize("text, number", [
    ("MT-42", 42), ("mt-42", 42), ("42", 42), ("[MT-42]", 42), (" MT-7 ", 7), ("MT-007", 7),
    ("MT-" + "9" * 18, 10 ** 18 - 1),
])
def test_a_ref_names_its_number(text: str, number: int) -> None:
    assert parse_ref(text, "MT") == number


@pytest.mark.parametrize("text", [
    "MT-²", "MT-\u00b2\u00b3", "²", "MT-٤٢",          # digits to str.isdigit(), not ASCII: int() refuses ² outright
    "MT-" + "9" * 19, "9" * 23,                        # longer than a 64-bit integer can hold
    "MT-", "", "MT-4 2", "MT-+4", "MT--4", "MT-4.0", "XY-42", "MT-42x", "MT-0x1f",
])
def test_anything_else_is_no_ref(text: str) -> None:
    assert parse_ref(text, "MT") is None


def test_a_ref_round_trips() -> None:
    assert parse_ref(ticket_ref("HELP", 123), "help") == 123
