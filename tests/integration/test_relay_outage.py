"""A relay outage loses and doubles nothing: refused logins and 4xx are
temporary, per recipient where RFC 5321 says so; a silent relay costs one
timeout per run; the outage is logged once, and once more when it ends;
`outbox retry` sends failed mail again. Against the recording aiosmtpd sink
(tests/servers.py), told to refuse for a while; time is the `--now` clock."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from datetime import timedelta

import pytest
import yaml

from daemons import daemons  # noqa: F401  (the fixture)
from helpers import eml, make_site, site_app
from mailtriage.clock import parse_instant
from mailtriage.notify import outbox
from mailtriage.notify.relay import Relay
from servers import SMTP_PORT, free_port, start_sink, wait_for

NOW = parse_instant("2026-03-02T09:00:00+00:00")
PASSWORD_ENV = "MT_TEST_RELAY_PASSWORD"


def at(minutes: float) -> str:
    return (NOW + timedelta(minutes=minutes)).isoformat()


def relay_site(tmp_path, *, port: int = SMTP_PORT, login: bool = True, timeout: str = "5s",  # type: ignore[no-untyped-def]
               max_attempts: int = 3, notify: tuple[str, ...] = ("l1-team@example.test",), notices: str = "[]",
               retry: tuple[str | float, str | float] = ("1m", "10m")):
    """A site sending through the sink with a login, retrying after 1m, 2m, 4m … (at most 10m)."""
    site = make_site(tmp_path / "site", agent_notices=notices, smtp_in_port=free_port())
    data = yaml.safe_load(site.config.read_text())
    data["smtp_out"] = {"host": "127.0.0.1", "port": port, "timeout": timeout, "retry_first": retry[0],
                        "retry_max": retry[1], "max_attempts": max_attempts}
    if login:
        data["smtp_out"].update(username="support@example.test", password_env=PASSWORD_ENV)
    data["tiers"]["L1"]["notify"] = list(notify)
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    return site


@pytest.fixture(autouse=True)
def relay_password(monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "relay-secret")


def ingest(site, *numbers: int, now: str | None = NOW.isoformat()) -> None:  # type: ignore[no-untyped-def]
    for n in numbers:
        path = site.dir / f"m{n}.eml"
        path.write_bytes(eml(f"Question {n}", sender=f"c{n}@customer.example", message_id=f"<q{n}@customer.example>"))
        assert site.ingest(path, now=now)[0].endswith(" new")


def rows(site) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(site.ok("outbox", "list", "--all", "--json"))


def copies(sink) -> Counter:  # type: ignore[no-untyped-def]
    """(Message-ID, recipient) → how many copies the relay took."""
    return Counter((c.msg["Message-ID"], r) for c in sink for r in c.rcpt_tos)


@pytest.mark.parametrize("reply", ["535 5.7.8 Authentication credentials invalid",
                                   "454 4.7.0 Temporary authentication failure",
                                   "534 5.7.9 Please log in with your web browser",
                                   "530 5.7.0 Authentication required"])
def test_a_refused_login_keeps_every_mail_pending_and_each_goes_once_when_it_works(
        tmp_path, smtp_sink, smtp_sink_control, reply):
    site = relay_site(tmp_path, max_attempts=3)
    ingest(site, 1, 2, 3)
    smtp_sink_control.fail("auth", reply, times=5)           # longer than max_attempts: not the mail's fault

    for minutes in (0, 1, 2, 3, 4):
        out = site.ok("outbox", "flush", now=at(minutes))
        assert out.startswith("sent 0, deferred 1, failed 0")  # one login per run, not one per mail
        assert f"relay is unavailable (authentication failed): pending mail waits until {at(minutes + 1)}" in out
        assert [(r["status"], r["attempts"], r["due_at"]) for r in rows(site)] == [("pending", 0, at(minutes + 1))] * 3
        assert reply in rows(site)[0]["last_error"]
    assert smtp_sink_control.logins == ["support@example.test"] * 5 and smtp_sink == []

    assert site.ok("outbox", "flush", now=at(5)).startswith("sent 3, deferred 0, failed 0")
    assert {r["status"] for r in rows(site)} == {"sent"}
    assert sorted(copies(smtp_sink).values()) == [1, 1, 1]
    assert {mid for mid, _ in copies(smtp_sink)} == {r["message_id"] for r in rows(site)}


def test_a_451_to_one_of_two_recipients_retries_that_one_only(tmp_path, smtp_sink, smtp_sink_control):
    team = ("l1-team@example.test", "l1-lead@example.test")
    site = relay_site(tmp_path, login=False, notify=team, notices="[new]")
    ingest(site, 1)                                              # an acknowledgement, and a notice to both
    smtp_sink_control.fail("rcpt", "451 4.2.1 mailbox busy", rcpt="l1-lead@example.test")

    assert site.ok("outbox", "flush", now=at(0)).startswith("sent 1, deferred 1, failed 0")
    [notice] = [r for r in rows(site) if r["kind"] != "acknowledgement"]
    assert notice["status"] == "pending" and notice["due_at"] == at(1)
    assert {a: d["status"] for a, d in notice["deliveries"].items()} == {
        "l1-team@example.test": "sent", "l1-lead@example.test": "deferred"}
    assert notice["last_error"] == "l1-lead@example.test: 451 4.2.1 mailbox busy"

    assert site.ok("outbox", "flush", now=at(1)).startswith("sent 1, deferred 0, failed 0")
    assert [c.rcpt_tos for c in smtp_sink if c.msg["Message-ID"] == notice["message_id"]] == [
        ["l1-team@example.test"], ["l1-lead@example.test"]]
    assert set(copies(smtp_sink).values()) == {1}                # each recipient, one copy
    assert {r["status"] for r in rows(site)} == {"sent"}


def test_a_550_fails_the_mail_and_outbox_retry_sends_it_once(tmp_path, smtp_sink, smtp_sink_control):
    site = relay_site(tmp_path, login=False)
    ingest(site, 1)
    smtp_sink_control.fail("data", "550 5.7.1 message refused")
    assert site.ok("outbox", "flush", now=at(0)).startswith("sent 0, deferred 0, failed 1")
    [row] = rows(site)
    assert row["status"] == "failed" and "550 5.7.1" in row["last_error"]
    assert any(e["type"] == "send-failed" and "550" in e["detail"] for e in site.ticket("MT-1")["events"])

    # The operator fixed the cause (the sink takes mail again).
    assert site.ok("outbox", "retry", "--failed", now=at(30)) == \
        f"{row['id']} pending acknowledgement to c1@customer.example\n"
    [row] = rows(site)
    assert (row["status"], row["attempts"], row["due_at"]) == ("pending", 0, at(30))
    assert site.ok("outbox", "flush", now=at(30)).startswith("sent 1")
    assert list(copies(smtp_sink).values()) == [1]
    assert "send-retried" in [e["type"] for e in site.ticket("MT-1")["events"]]

    assert site.ok("outbox", "retry", str(row["id"])) == f"{row['id']} sent acknowledgement: not failed, left as it is\n"
    code, out, err = site.cli("outbox", "retry", str(row["id"]), "99")
    assert code == 2 and "99: no such outbox mail" in err and out.startswith(f"{row['id']} sent")
    assert site.cli("outbox", "retry")[0] == 2                      # IDs or --failed


def test_a_550_to_one_recipient_fails_that_one_and_a_retry_reaches_only_them(tmp_path, smtp_sink, smtp_sink_control):
    team = ("l1-team@example.test", "l1-gone@example.test")
    site = relay_site(tmp_path, login=False, notify=team, notices="[new]")
    ingest(site, 1)
    smtp_sink_control.fail("rcpt", "550 5.1.1 no such user", rcpt="l1-gone@example.test")
    assert site.ok("outbox", "flush", now=at(0)).startswith("sent 1, deferred 0, failed 1")
    [notice] = [r for r in rows(site) if r["kind"] != "acknowledgement"]
    assert notice["status"] == "failed" and notice["last_error"] == "l1-gone@example.test: 550 5.1.1 no such user"
    failed = [e["detail"] for e in site.ticket("MT-1")["events"] if e["type"] == "send-failed"]
    assert len(failed) == 1 and "l1-gone@example.test: 550" in failed[0] and "l1-team" not in failed[0]

    assert site.ok("outbox", "retry", str(notice["id"]), now=at(5)).endswith(" to l1-gone@example.test\n")
    assert site.ok("outbox", "flush", now=at(5)).startswith("sent 1")
    assert set(copies(smtp_sink).values()) == {1}                 # l1-team did not get it twice
    assert Counter(r for _, r in copies(smtp_sink)) == {"c1@customer.example": 1, "l1-team@example.test": 1,
                                                         "l1-gone@example.test": 1}


def test_a_relay_that_never_answers_costs_one_timeout_per_run_not_one_per_mail(tmp_path, silent_relay):
    site = relay_site(tmp_path, port=silent_relay, timeout="1s")
    ingest(site, 1, 2, 3, 4)
    started = time.monotonic()
    out = site.ok("outbox", "flush", now=at(0))
    took = time.monotonic() - started
    assert 0.9 < took < 2.5, took                                   # one 1 s timeout, not four
    assert "relay is unavailable (no answer)" in out
    assert [(r["status"], r["attempts"], r["due_at"]) for r in rows(site)] == [("pending", 0, at(1))] * 4


def test_an_outage_is_logged_when_it_starts_when_its_cause_changes_and_when_it_ends(tmp_path, caplog):
    """The daemon's sender job, with the daemon's Relay kept across runs and a clock the test moves."""
    port = free_port()                                              # nothing listens yet: connection refused
    site = relay_site(tmp_path, port=port)
    ingest(site, 1, 2, 3)
    app = site_app(site, NOW)
    relay = Relay.for_settings(app.settings.smtp_out)
    controller = None
    caplog.set_level(logging.DEBUG, logger="mailtriage")
    caplog.clear()

    def run(minutes: float) -> outbox.FlushResult:
        return outbox.run_once(app, NOW + timedelta(minutes=minutes), relay=relay)

    try:
        assert run(0).relay_down == "connection refused"
        assert run(1).relay_down == "connection refused"            # next try after 1m, then 2m, 4m, 8m
        controller, sink = start_sink(port)                         # the relay is back, with a rotated password
        sink.fail("auth", "535 5.7.8 Authentication credentials invalid", times=2)
        assert run(3).relay_down == "authentication failed"
        assert run(5).total == 0 and sink.logins == ["support@example.test"]   # not tried before 09:07
        assert run(7).relay_down == "authentication failed"
        assert run(14.9).total == 0 and len(sink.logins) == 2
        assert run(15).sent == 3
        assert sorted(copies(sink.messages).values()) == [1, 1, 1]
    finally:
        app.store.close()
        if controller is not None:
            controller.stop()

    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("mailtriage")]
    assert len(loud) == 3, loud                                     # no line per mail, none per run
    assert loud[0].startswith(f"outgoing relay 127.0.0.1:{port}: RelayUnavailable: connection refused")
    assert "failing differently now (for 180.0 s)" in loud[1] and "535 5.7.8" in loud[1]
    assert "working again after 900.0 s (4 failed attempts)" in loud[2]


def test_the_daemon_rides_out_a_refused_login_with_one_line_each_way(tmp_path, smtp_sink, smtp_sink_control, daemons):
    """The real daemon (its clock is the wall clock, so the retry schedule is short here)."""
    site = relay_site(tmp_path, max_attempts=2, retry=(0.2, 0.4))
    ingest(site, 1, 2, 3, now=None)                                 # now: no SLA notice falls due meanwhile
    smtp_sink_control.fail("auth", "535 5.7.8 Authentication credentials invalid", times=4)
    daemon = daemons(site).wait_ready()
    wait_for(lambda: len(smtp_sink) == 3, timeout=20)
    daemon.wait_log("working again after")
    assert sorted(copies(smtp_sink).values()) == [1, 1, 1]
    assert len(smtp_sink_control.logins) == 5                       # one per try of the relay, not per mail
    log = daemon.log()
    assert log.count("outgoing relay 127.0.0.1") == 2, log          # the outage, and its end
    assert "deferred (attempt" not in log and "): failed:" not in log   # no line per mail
