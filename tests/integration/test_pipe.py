"""`mailtriage ingest` reading stdin is an MTA's pipe: 0 once the message is
committed, 78 when the config cannot be loaded, 75 for anything else, never
1 or 2 (an MTA bounces on those); one line on stderr, led by the status code
Postfix reads, and the traceback only with -v. Run as the MTA runs it: a
real process, the message on stdin. (test_postfix.py: the same under a real Postfix.)"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from daemons import daemon_env
from helpers import ROOT, Site, break_raw_inserts, eml, make_site
from servers import free_port

NOW = "2026-03-02T09:00:00+00:00"


@pytest.fixture
def site(tmp_path) -> Site:
    """One SQLite site: what is tested here is the process's answer, not the database."""
    return make_site(tmp_path / "site")


def pipe(site, *args: str, stdin: bytes | None = None, env: dict[str, str | None] | None = None):  # type: ignore[no-untyped-def]
    """`python -m mailtriage --config SITE ARGS < message`, as an MTA runs it."""
    return subprocess.run([sys.executable, "-m", "mailtriage", "--config", str(site.config), *args],
                          input=eml("Printer on fire") if stdin is None else stdin, capture_output=True,
                          timeout=60, env=daemon_env({"PYTHONPATH": str(ROOT), **(env or {})}), cwd=site.dir)


def one_line(result, status: str) -> str:  # type: ignore[no-untyped-def]
    """The reason: exactly one line on stderr, nothing on stdout, no traceback."""
    err = result.stderr.decode()
    assert result.stdout == b"" and err.count("\n") == 1 and err.startswith(status + " mailtriage: "), err
    return err


def test_the_database_unreachable_is_75_with_one_line_and_the_traceback_only_with_v(site):
    gone = {"MAILTRIAGE_DATABASE": "sqlite:////no/such/dir/x.db"}
    result = pipe(site, "ingest", env=gone)
    assert result.returncode == 75
    line = one_line(result, "4.3.0")
    assert "temporary failure" in line and "database unreachable" in line and "unable to open database file" in line

    verbose = pipe(site, "ingest", "-v", env=gone)
    assert verbose.returncode == 75
    first, rest = verbose.stderr.decode().split("\n", 1)
    assert first + "\n" == line and "Traceback (most recent call last)" in rest


def test_postgresql_on_a_port_nobody_listens_on_is_75(site):
    result = pipe(site, "ingest", env={"MAILTRIAGE_DATABASE": f"postgresql+psycopg://u:p@127.0.0.1:{free_port()}/x"})
    assert result.returncode == 75
    assert "Connection refused" in one_line(result, "4.3.0")


def test_a_full_disk_before_the_commit_is_75(site):
    site.ok("tickets", "list")
    break_raw_inserts(site.database_url())
    result = pipe(site, "ingest")
    assert result.returncode == 75 and "disk full" in one_line(result, "4.3.0")


@pytest.mark.parametrize("breakage", ["rules typo", "config yaml", "template syntax", "config unreadable"])
def test_a_configuration_that_cannot_be_loaded_is_78(site, breakage):
    if breakage == "rules typo":
        rules = site.dir / "rules.yaml"
        rules.write_text(rules.read_text().replace("    when:", "    whne:", 1))
    elif breakage == "config yaml":
        site.config.write_text(site.config.read_text().replace("ticket_prefix: MT", "ticket_prefix: [MT"))
    elif breakage == "template syntax":
        (site.dir / "templates" / "acknowledgement.txt").write_text("Subject: hi\n\n{% if %}\n")
    else:
        site.config.unlink()
        site.config.mkdir()                               # reading it fails with an OSError
    result = pipe(site, "ingest")
    assert result.returncode == 78, result.stderr
    line = one_line(result, "4.3.5")
    assert "configuration error" in line


def test_the_configuration_error_line_names_the_file_and_line(site):
    rules = site.dir / "rules.yaml"
    text = rules.read_text()
    rules.write_text(text.replace("    when:", "    whne:", 1))
    line = one_line(pipe(site, "ingest"), "4.3.5")
    number = text.splitlines().index("  - name: outage") + 1          # the rule that lacks its `when:`
    assert f"{rules}:{number}: " in line and "run `mailtriage config check`" in line


def test_a_bad_command_line_is_78_in_the_pipe_and_2_with_files(site):
    result = pipe(site, "ingest", "--rpct=support@example.test")
    assert result.returncode == 78 and "unrecognized arguments" in one_line(result, "4.3.5")
    (site.dir / "a.eml").write_bytes(eml())
    assert pipe(site, "ingest", "--rpct=support@example.test", "a.eml").returncode == 2


def test_committed_is_0_whatever_the_outcome(site):
    # Quarantined as over a limit (a template that cannot render used to do it: the
    # config now refuses such a template, and at run time the built-in one stands in).
    data = yaml.safe_load(site.config.read_text())
    data["limits"] = {"max_message_size": 100}
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    quarantined = pipe(site, "ingest", "--now", NOW)
    assert quarantined.returncode == 0 and quarantined.stdout.decode().startswith("- quarantined:")
    again = pipe(site, "ingest", "--now", NOW)                            # the MTA delivered it twice
    assert again.returncode == 0 and again.stdout.decode().strip() == "- duplicate"


def test_a_good_message_prints_its_ref_and_nothing_on_stderr(site):
    result = pipe(site, "ingest", "--rcpt=support@example.test", "--now", NOW)
    assert (result.returncode, result.stdout.decode(), result.stderr) == (0, "MT-1 new\n", b"")


def test_ingest_of_files_keeps_its_contract(site):
    data = yaml.safe_load(site.config.read_text())
    data["rules"] = "no-such-rules.yaml"
    site.config.write_text(yaml.safe_dump(data))
    (site.dir / "a.eml").write_bytes(eml())
    result = pipe(site, "ingest", "a.eml")
    assert result.returncode == 2 and not result.stderr.decode().startswith("4.")
