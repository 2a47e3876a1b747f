"""Rule fixtures (X.eml + X.expect.yaml): a broken expectation is reported at its
FILE:LINE, a verdict that misses one is one line per field. Real files, no mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import eml
from mailtriage.classify import classify, rules_from_text
from mailtriage.classify.expect import Expectation, load_fixtures, mismatches
from mailtriage.errors import ConfigError
from mailtriage.mail.parse import parse

RULES = rules_from_text("""
rules:
  - name: outage
    when: {subject_or_body: [outage]}
    set: {severity: S1, tags: [outage]}
  - name: billing
    when: {subject: [invoice]}
    set: {queue: billing, tags: [billing]}
default: {severity: S3, tier: L1, queue: support}
""", "rules.yaml")


def fixture_dir(folder: Path, **files: str) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / name.replace("_expect", ".expect.yaml").replace("_eml", ".eml")).write_text(text)
    return folder


def problems(folder: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_fixtures(folder)
    assert caught.value.exit_code == 2
    return [str(problem) for problem in caught.value.problems]


def test_a_fixture_set_is_read_with_what_each_message_expects(tmp_path: Path) -> None:
    folder = fixture_dir(tmp_path / "f", a_eml="x", a_expect="severity: S1\ntags: [outage]\n",
                         b_eml="y", b_expect="queue: billing\ntier: L2\ntags: []\n")
    found = load_fixtures(folder)
    assert [f.eml.name for f in found] == ["a.eml", "b.eml"]
    assert found[0].expect == Expectation(severity="S1", tags=frozenset({"outage"}))
    assert found[1].expect == Expectation(tier="L2", queue="billing", tags=frozenset())


def test_every_problem_of_the_set_at_its_file_and_line(tmp_path: Path) -> None:
    folder = fixture_dir(tmp_path / "f",
                         a_eml="x", a_expect="# comment\nseverity: S9\nqueu: billing\ntags: {x: 1}\n",
                         b_eml="y", b_expect="severity: [S1\n",
                         c_eml="z",
                         d_expect="severity: S1\n",
                         e_eml="w", e_expect="")
    assert problems(folder) == [
        f"{folder}/d.expect.yaml:1: no d.eml beside it",
        f"{folder}/a.expect.yaml:2: severity: must be one of S1, S2, S3, S4, not 'S9'",
        f"{folder}/a.expect.yaml:3: unknown key 'queu'; did you mean 'queue'?",
        f"{folder}/a.expect.yaml:4: tags: must be a list of non-empty strings ([] expects no tags)",
        f"{folder}/b.expect.yaml:2: YAML syntax: expected ',' or ']', but got '<stream end>'",
        f"{folder}/c.eml:1: no c.expect.yaml beside it",
        f"{folder}/e.expect.yaml:1: expected a mapping of severity, tier, queue, tags, not empty",
    ]


def test_a_folder_without_fixtures_is_a_problem_not_a_pass(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert problems(tmp_path / "empty") == [f"{tmp_path}/empty:1: no X.eml fixtures in this folder"]
    assert problems(tmp_path / "missing") == [
        f"{tmp_path}/missing:1: not a folder of X.eml and X.expect.yaml fixtures"]


def test_mismatches_name_the_field_what_it_got_and_what_was_expected() -> None:
    verdict = classify(parse(eml("Invoice portal outage", "Down.")), RULES)
    assert mismatches(Expectation(severity="S1", queue="billing", tags=frozenset({"outage", "billing"})),
                      verdict) == []
    assert mismatches(Expectation(severity="S2", tier="L2", queue="support", tags=frozenset({"outage"})),
                      verdict) == ["severity S1, expected S2", "tier L1, expected L2",
                               "queue billing, expected support", "tags [billing, outage], expected [outage]"]
    assert mismatches(Expectation(), verdict) == []                      # nothing expected, nothing checked
