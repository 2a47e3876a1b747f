"""init, config check, rules test, db upgrade — what an admin does first."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, Site, eml
from mailtriage.cli import main
from mailtriage.config.builtin import builtin


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailtriage", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=60)


def test_init_writes_a_config_that_checks_and_never_overwrites(tmp_path):
    target = tmp_path / "site"
    first = run("init", str(target))
    assert first.returncode == 0, first.stderr
    for name in ("mailtriage.yaml", "rules.yaml", "templates/acknowledgement.txt"):
        assert (target / name).is_file(), name
    assert names(target / "templates") == names(builtin("templates"))     # every template, the report page too
    assert "#" in (target / "mailtriage.yaml").read_text()          # commented example

    (target / "rules.yaml").write_text("rules: []\n")
    second = run("init", str(target))
    assert "kept" in second.stdout
    assert (target / "rules.yaml").read_text() == "rules: []\n"

    check = run("--config", str(target / "mailtriage.yaml"), "config", "check")
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("ok:")


def names(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def init(folder: Path, *drop: str) -> Site:
    """`mailtriage init FOLDER` (in-process), then these lines taken out of its config."""
    assert main(["init", str(folder)]) == 0
    config = folder / "mailtriage.yaml"
    text = config.read_text()
    for line in drop:
        assert line in text
        text = text.replace(line, "")
    config.write_text(text)
    return Site(folder, config)


def test_a_config_naming_no_rules_or_templates_uses_the_built_in_ones(tmp_path):
    site = init(tmp_path, "rules: rules.yaml\n", "templates: templates/\n")
    (tmp_path / "rules.yaml").unlink()
    shutil.rmtree(tmp_path / "templates")
    assert site.ok("config", "check").startswith("ok:")
    mail = site.write("a.eml", "")
    mail.write_bytes(eml("VPN is down", "Nobody can work.", to="support@localhost"))
    verdict = json.loads(site.ok("rules", "test", str(mail), "--json"))
    assert verdict["severity"] == "S1" and verdict["matched_rules"]           # the built-in rules
    site.ingest(mail, now="2026-03-02T09:00:00+00:00")
    [sent] = site.outbox_files()
    assert b"Subject: [MT-1] VPN is down" in sent                           # the built-in acknowledgement


def test_a_rules_yaml_beside_a_config_without_rules_is_still_used(tmp_path):
    site = init(tmp_path, "rules: rules.yaml\n")
    (tmp_path / "rules.yaml").write_text("rules: []\n")
    assert " 0 rule(s)" in site.ok("config", "check")


def test_a_templates_folder_that_is_not_there_is_reported_at_its_line(tmp_path):
    site = init(tmp_path)
    config = site.config
    config.write_text(config.read_text().replace("templates: templates/", "templates: mail-templates/"))
    line = next(i for i, text in enumerate(config.read_text().splitlines(), 1) if "mail-templates/" in text)
    code, _, err = site.cli("config", "check")
    assert code == 2
    assert err.startswith(f"{config}:{line}: templates folder not found: "), err
    config.write_text(config.read_text() + "smtp_inn: {port: 1}\n")           # and beside other problems
    code, _, err = site.cli("config", "check")
    assert code == 2 and f"{config}:{line}: templates folder not found: " in err
    assert err.count("templates folder not found") == 1, err


def test_config_check_reports_every_problem_at_its_line(tmp_path):
    run("init", str(tmp_path))
    config = tmp_path / "mailtriage.yaml"
    text = config.read_text()
    text = text.replace("ticket_prefix: MT", "ticket_prefix: MT\nsmtp_inn: {port: 1}")
    text = text.replace("S2: {first_response: 30m", "S2: {first_response: 30 minutes")
    text = text.replace("calendar: office}    # one person", "calendar: offce}    # one person")
    config.write_text(text)
    (tmp_path / "rules.yaml").write_text("rules:\n  - name: x\n    when: {subject: [a]}\n    set: {severity: S9}\n")
    lines = text.splitlines()

    result = run("--config", str(config), "config", "check")
    assert result.returncode == 2
    problems = result.stderr.strip().splitlines()

    def line_of(fragment: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if fragment in line)

    assert any(p.startswith(f"{config}:{line_of('smtp_inn')}: ") and "unknown key" in p for p in problems)
    assert any(p.startswith(f"{config}:{line_of('30 minutes')}: ") and "duration" in p for p in problems)
    assert any(p.startswith(f"{config}:{line_of('offce')}: ") and "offce" in p for p in problems), problems
    assert any(p.startswith(f"{tmp_path / 'rules.yaml'}:4: ") for p in problems), problems


def test_rules_errors_are_reported_with_the_rules_file_line(tmp_path):
    run("init", str(tmp_path))
    (tmp_path / "rules.yaml").write_text("rules:\n  - name: x\n    when: {subject: [a]}\n    set: {severity: S9}\n")
    result = run("--config", str(tmp_path / "mailtriage.yaml"), "config", "check")
    assert result.returncode == 2
    assert f"{tmp_path / 'rules.yaml'}:4: " in result.stderr


def test_template_syntax_error_is_reported_with_its_line(tmp_path):
    run("init", str(tmp_path))
    template = tmp_path / "templates" / "acknowledgement.txt"
    template.write_text("Subject: hi\n\nline two\n{% if %}\n")
    result = run("--config", str(tmp_path / "mailtriage.yaml"), "config", "check")
    assert result.returncode == 2
    assert f"{template}:4: template:" in result.stderr


def test_report_page_syntax_error_is_reported_with_its_line(tmp_path):
    site = init(tmp_path)
    page = tmp_path / "templates" / "report_sla.html"
    page.write_text("<p>\n{% if %}\n")
    code, _, err = site.cli("config", "check")
    assert code == 2
    assert f"{page}:2: template:" in err


def test_bad_yaml_is_reported_at_its_line(tmp_path):
    config = tmp_path / "mailtriage.yaml"
    config.write_text("database: sqlite:///x.db\nmailboxes:\n  - name: [unclosed\n")
    result = run("--config", str(config), "config", "check")
    assert result.returncode == 2
    assert result.stderr.startswith(f"{config}:")


def test_rules_test_explains_the_verdict_without_storing(site, capsys):
    path = site.dir / "m.eml"
    path.write_bytes(eml("Сервер не работает", "Весь отдел не может работать."))
    data = json.loads(site.ok("rules", "test", str(path), "--json"))
    assert data["severity"] == "S1"
    assert data["matched_rules"][0] == "outage"
    assert any(h["matched"].lower() == "не работает" for h in data["hits"])
    assert site.tickets() == []


def test_db_upgrade_creates_and_is_idempotent(tmp_path):
    run("init", str(tmp_path))
    config = str(tmp_path / "mailtriage.yaml")
    first = run("--config", config, "db", "upgrade")
    assert first.returncode == 0 and "upgraded" in first.stdout, first.stderr
    second = run("--config", config, "db", "upgrade")
    assert "already" in second.stdout


def test_embedded_defaults_work_with_no_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILTRIAGE_CONFIG", raising=False)
    (tmp_path / "a.eml").write_bytes(eml("VPN is down", to="support@localhost"))
    assert main(["--now", "2026-03-02T09:00:00+00:00", "ingest", "a.eml"]) == 0
    assert main(["outbox", "flush"]) == 0
    assert (tmp_path / "mailtriage.db").exists()
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 1


def test_bad_now_is_a_usage_error(site):
    code, _, err = site.cli("tickets", "list", now="yesterday")
    assert code == 2 and "--now" in err


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```")[1]
    assert "scripts/setup" in block and "mailtriage run" in block
    assert "scripts/test" in block
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_schema_head_constant_matches_the_migrations():
    from alembic.script import ScriptDirectory

    from mailtriage.store.db import SCHEMA_HEAD, alembic_config

    assert ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() == SCHEMA_HEAD


def test_the_migrations_build_exactly_the_models_schema(tmp_path, database_url):
    """What `db upgrade` builds is what the code expects, on both databases
    (Alembic's autogenerate finds no difference: no table, column or index missing)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from mailtriage.store.db import open_store
    from mailtriage.store.schema import Base

    store = open_store(database_url or f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        with store.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        store.close()


def test_db_upgrade_brings_a_database_of_the_first_release_forward(site):
    """A database at the first schema (here: taken back there with the
    migration's downgrade) is refused by the CLI with what to do, and keeps its
    tickets through `db upgrade`."""
    from alembic import command
    from sqlalchemy import inspect

    from mailtriage.store.db import SCHEMA_HEAD, alembic_config, connect

    path = site.dir / "m.eml"
    path.write_bytes(eml())
    [line] = site.ingest(path)
    ref = line.split()[0]
    url = site.database_url()
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = f"sqlite:///{site.dir / url.removeprefix('sqlite:///')}"
    store = connect(url)
    config = alembic_config(url)
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert "ix_raw_messages_ticket_id" not in {i["name"] for i in inspect(store.engine).get_indexes("raw_messages")}
    store.close()
    code, _, err = site.cli("tickets", "list")
    assert code != 0 and "mailtriage db upgrade" in err
    assert SCHEMA_HEAD in site.ok("db", "upgrade")
    store = connect(url)
    assert "ix_raw_messages_ticket_id" in {i["name"] for i in inspect(store.engine).get_indexes("raw_messages")}
    store.close()
    assert [t["ref"] for t in site.tickets()] == [ref]
