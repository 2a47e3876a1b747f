"""`mailtriage rules test DIR --expect`: the shipped fixtures keep the example rules
honest, an edited rule that breaks one says so in one line, and `init` gives an
admin the same set to extend."""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers import make_site
from mailtriage.classify import classify, load_rules
from mailtriage.classify.expect import load_fixtures
from mailtriage.cli import main
from mailtriage.config.builtin import builtin
from mailtriage.mail.parse import parse

FIXTURES = builtin("config") / "rules-fixtures"
RULES = builtin("config") / "rules.yaml"


def test_the_shipped_fixtures_pass_with_the_example_rules(capsys) -> None:
    assert main(["rules", "test", str(FIXTURES), "--expect", "--rules", str(RULES)]) == 0
    out = capsys.readouterr().out
    assert out == f"ok: {len(load_fixtures(FIXTURES))} fixture(s) in {FIXTURES} as expected by {RULES}\n"
    assert main(["rules", "test", str(FIXTURES), "--expect", "--json"]) == 2       # one verdict or many lines


def test_the_shipped_fixtures_cover_every_example_rule_and_the_default() -> None:
    rules = load_rules(RULES)
    matched = [classify(parse(f.eml.read_bytes()), rules).matched_rules for f in load_fixtures(FIXTURES)]
    assert {rule.name for rule in rules.rules} <= {name for names in matched for name in names}
    assert () in matched                       # a message no rule matches: the default decides
    assert any(len(names) > 1 for names in matched)     # tags adding up across rules


def test_a_changed_rule_fails_its_fixtures_one_line_each(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")          # its rules.yaml: a copy of the example rules
    rules = site.dir / "rules.yaml"
    rules.write_text(rules.read_text().replace("set: {severity: S1, tags: [outage]}",
                                               "set: {severity: S2, tags: [outage]}"))
    code, out, err = site.cli("rules", "test", str(FIXTURES), "--expect")
    assert code == 1, err
    assert out.splitlines() == [
        "outage.eml: severity S2, expected S1",
        "outage-stops.eml: severity S2, expected S1",
        f"2 of {len(load_fixtures(FIXTURES))} fixture(s) in {FIXTURES} not as expected by {rules}",
    ]


def test_a_broken_expectation_is_reported_at_its_line(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site")
    folder = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, folder)
    (folder / "billing.expect.yaml").write_text("severity: S3\nqueue: billing\ntag: [billing]\n")
    code, out, err = site.cli("rules", "test", str(folder), "--expect")
    assert (code, out) == (2, "")
    assert err == f"{folder}/billing.expect.yaml:3: unknown key 'tag'; did you mean 'tags'?\n"


def test_init_gives_the_admin_the_fixtures_beside_the_rules(tmp_path: Path, capsys) -> None:
    assert main(["init", str(tmp_path / "site")]) == 0
    copied = tmp_path / "site" / "rules-fixtures"
    assert sorted(p.name for p in copied.iterdir()) == sorted(p.name for p in FIXTURES.iterdir())
    capsys.readouterr()
    config = str(tmp_path / "site" / "mailtriage.yaml")
    assert main(["--config", config, "rules", "test", str(copied), "--expect"]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
