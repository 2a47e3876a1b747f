"""`config check` catches what would go wrong quietly later (issue 17, items
10, 11, 12, 21): each problem at its FILE:LINE with exit 2, each warning on a
line of its own with exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from helpers import Site, make_site


def edited(site: Site, change: Any) -> Site:
    """The site's config after `change(data)`, written back as YAML."""
    data = yaml.safe_load(site.config.read_text())
    change(data)
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    return site


def line_of(site: Site, text: str, after: int = 0) -> int:
    """The line of the config that holds `text` (after line `after`)."""
    lines = site.config.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if n > after and text in line)


def check(site: Site) -> tuple[int, list[str]]:
    code, _out, err = site.cli("config", "check")
    return code, err.splitlines()


def test_processed_folder_equal_to_the_watched_folder_is_refused_in_any_case(tmp_path: Path) -> None:
    def imap(data: dict) -> None:
        data["mailboxes"][0]["imap"] = {"host": "127.0.0.1", "username": "support", "password_env": "X",
                                        "folder": "INBOX", "processed_folder": "inbox"}
    site = edited(make_site(tmp_path / "site"), imap)
    code, lines = check(site)
    assert code == 2
    assert lines == [f"{site.config}:{line_of(site, 'processed_folder')}: mailbox support: processed_folder "
                     "'inbox' is the folder it watches ('INBOX'): every message would be moved onto itself, "
                     "for ever. Name another folder, or leave the key out to flag messages \\Seen"]


def test_a_relay_login_without_password_env_is_refused_at_its_line(tmp_path: Path) -> None:
    def relay(data: dict) -> None:
        data["smtp_out"] = {"host": "127.0.0.1", "port": 2525, "username": "mailtriage"}
    site = edited(make_site(tmp_path / "site"), relay)
    code, lines = check(site)
    assert code == 2
    [problem] = lines
    assert problem.startswith(f"{site.config}:{line_of(site, 'username: mailtriage')}: smtp_out: username "
                              "mailtriage is set but password_env is not")


def test_one_address_for_two_mailboxes_and_an_agent_at_our_address_are_refused(tmp_path: Path) -> None:
    def doubled(data: dict) -> None:
        data["mailboxes"].append({"name": "sales", "address": "Support@Example.test", "queue": "sales"})
        data["mailboxes"].append({"name": "billing", "address": "billing@example.test",
                                  "comment_address": "support-comment@example.test"})
        data["agents"].append({"email": "support@example.test", "name": "Shared inbox"})
    site = edited(make_site(tmp_path / "site"), doubled)
    code, lines = check(site)
    assert code == 2
    sales = line_of(site, "address: Support@Example.test")
    billing = line_of(site, "comment_address: support-comment@example.test", after=sales)
    agent = line_of(site, "email: support@example.test")
    assert lines == [
        f"{site.config}:{sales}: mailbox sales: address support@example.test is already mailbox support's "
        "address: mail to it could not tell which mailbox (and queue) it is for",
        f"{site.config}:{billing}: mailbox billing: comment_address support-comment@example.test is already "
        "mailbox support's comment_address: mail to it could not tell which mailbox (and queue) it is for",
        f"{site.config}:{agent}: agents: support@example.test is one of our own mailbox addresses: its mail "
        "would be taken for our own coming back (a loop) and never relayed. List the agent's own address",
    ]


def test_the_config_init_writes_checks_with_a_warning_per_empty_tier(tmp_path: Path) -> None:
    target = tmp_path / "site"
    run = [sys.executable, "-m", "mailtriage"]
    subprocess.run([*run, "init", str(target)], check=True, capture_output=True, timeout=60)
    result = subprocess.run([*run, "--config", str(target / "mailtriage.yaml"), "config", "check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok:") and "4 warning(s) above" in result.stdout
    warnings = result.stderr.splitlines()
    config = (target / "mailtriage.yaml").read_text().splitlines()
    assert len(warnings) == 4
    for tier, warning in zip(("L1", "L2", "L3", "L4"), warnings):
        line = next(n for n, text in enumerate(config, 1) if text.strip().startswith(f"{tier}: {{notify: []"))
        assert warning.startswith(f"{target / 'mailtriage.yaml'}:{line}: warning: tiers.{tier}.notify is empty: "
                                  f"nobody hears of {tier} tickets that no agent is assigned to")
    assert warnings[0].endswith("Fill in the L1 team's address(es): L1: {notify: [l1-team@example.test]}")
    assert warnings[3].endswith("Fill in your vendor's support address: L4: {notify: [vendor@partner.example]}")


def test_a_tier_left_out_and_the_old_shared_loop_id_are_warnings(tmp_path: Path) -> None:
    def gaps(data: dict) -> None:
        del data["tiers"]["L3"]
        data["loop_id"] = "mailtriage"
    site = edited(make_site(tmp_path / "site"), gaps)
    code, lines = check(site)
    assert code == 0
    assert [line.split(": warning: ")[0] for line in lines] == [
        f"{site.config}:{line_of(site, 'tiers:')}", f"{site.config}:{line_of(site, 'loop_id:')}"]
    assert "tiers.L3.notify is empty" in lines[0]
    assert "loop_id: mailtriage is the value every install once shared" in lines[1]
