"""Property-based fuzzing of parse → guards → thread → classify (and the
acknowledgement composed for the result) with mutated corpus messages.

A modest run here (a few seconds); `bench/fuzz.py` runs the same property
for as long as it is asked to.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from fuzzing import check, corpus_messages, default_rules, mutated

MESSAGES = corpus_messages()
RULES = default_rules()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=mutated(MESSAGES or [b"Subject: no corpus\n\nhello\n"]))
def test_mutated_corpus_messages_keep_every_invariant(raw: bytes) -> None:
    check(raw, RULES)


def test_the_corpus_itself_keeps_every_invariant(corpus_dir) -> None:  # type: ignore[no-untyped-def]
    summary = [check(raw, RULES) for raw in corpus_messages(corpus_dir)]
    assert summary.count("human") > 200
