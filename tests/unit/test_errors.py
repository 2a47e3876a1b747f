"""The one mapping of failures to exit codes and SMTP replies (errors.py)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from mailtriage.errors import (EX_CONFIG, EX_TEMPFAIL, ConfigError, NotFound, Problem, SchemaOutdated,
                               TemporaryFailure, UsageError, exit_code, one_line, smtp_reply)

FAILURES = [ConfigError(Problem("rules.yaml", 3, "unknown key 'whne'")), UsageError("bad --now"),
            TemporaryFailure("database unreachable"), SchemaOutdated("run db upgrade"), NotFound("no MT-9"),
            KeyError("x"), OSError(28, "No space left on device"), KeyboardInterrupt()]


@pytest.mark.parametrize("failure", FAILURES, ids=lambda e: type(e).__name__)
def test_the_mta_pipe_never_sees_1_or_2(failure):
    expected = EX_CONFIG if isinstance(failure, (ConfigError, UsageError)) else EX_TEMPFAIL
    assert exit_code(failure, mta_pipe=True) == expected


def test_elsewhere_the_usual_codes():
    assert [exit_code(f) for f in FAILURES] == [2, 2, 75, 2, 2, 1, 1, 1]


@pytest.mark.parametrize("failure", FAILURES, ids=lambda e: type(e).__name__)
def test_the_listener_answers_our_failures_with_4xx(failure):
    assert smtp_reply(failure).startswith("451 4.3.0 ")
    assert smtp_reply(failure, closing=True).startswith("421 4.3.2 ")
    assert "\n" not in smtp_reply(failure)


def test_one_line_gives_the_first_problem_and_how_many_more():
    error = ConfigError([Problem("r.yaml", 3, "unknown key 'whne'"), Problem("r.yaml", 9, "bad"),
                         Problem("c.yaml", 1, "worse")])
    assert one_line(error) == "r.yaml:3: unknown key 'whne' (and 2 more: run `mailtriage config check`)"


def test_one_line_gives_the_driver_s_words_not_sqlalchemy_s_statement_dump():
    driver = sqlite3.OperationalError("unable to open database file")
    wrapped = OperationalError("INSERT INTO raw_messages …\n[parameters: …]", {}, driver)
    try:
        raise TemporaryFailure("could not store the message: OperationalError") from wrapped
    except TemporaryFailure as failure:
        assert one_line(failure) == "could not store the message: OperationalError: unable to open database file"


def test_one_line_is_one_line_and_names_a_foreign_exception():
    assert one_line(ValueError("first\nsecond")) == "ValueError: first"
    assert one_line(KeyError()) == "KeyError"
