"""The health job (health/monitor.py) on a real database, and `mailtriage
status` with no daemon running: alerts go through the outbox once, survive a
restart, and the heartbeat rows are written on a change, not per report."""

from __future__ import annotations

import email
import json
from datetime import datetime, timedelta, timezone

import yaml

from helpers import eml, make_site, site_app
from mailtriage.health.board import Board
from mailtriage.health.monitor import REFRESH, Monitor
from mailtriage.store.schema import OutboxRow

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def alerting_site(tmp_path, after: str = "5m", database: str | None = None):  # type: ignore[no-untyped-def]
    site = make_site(tmp_path / "site", database=database)
    data = yaml.safe_load(site.config.read_text())
    data["alerts"] = {"to": ["ops@example.test"], "after": after}
    data["mailboxes"][0]["imap"] = {"host": "127.0.0.1", "port": 1, "ssl": False, "username": "support@example.test",
                                    "password_env": "UNUSED"}
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    return site


def alerts(app) -> list[email.message.Message]:  # type: ignore[no-untyped-def]
    with app.store.session() as session:
        rows = session.query(OutboxRow).where(OutboxRow.kind.like("alert%")).order_by(OutboxRow.id).all()
        return [email.message_from_bytes(row.data) for row in rows]


def step(monitor: Monitor, app, minutes: float):  # type: ignore[no-untyped-def]
    now = T0 + timedelta(minutes=minutes)
    app.clock.set(now)
    monitor.run_once(now)
    return now


def test_one_alert_after_after_one_recovery_and_a_restart_repeats_neither(tmp_path, database_url):
    site = alerting_site(tmp_path, database=database_url)
    app = site_app(site, T0)
    board = Board()
    monitor = Monitor(board, lambda: app)
    monitor.load(T0)
    board.succeeded("mailbox:support", T0)
    step(monitor, app, 0)
    board.failed("mailbox:support", "ConnectionRefusedError: [Errno 111] Connection refused", T0 + timedelta(minutes=1))
    for minute in (1, 2, 5.9):
        step(monitor, app, minute)
    assert alerts(app) == []
    step(monitor, app, 6)
    step(monitor, app, 7)
    [alert] = alerts(app)
    assert alert["Subject"] == "[mailtriage] mailbox:support is failing"
    assert alert["To"] == "ops@example.test" and alert["Auto-Submitted"] == "auto-generated"
    assert "Connection refused" in alert.get_payload(decode=True).decode()

    # A new daemon: the row says the alert went out.
    board2 = Board()
    monitor2 = Monitor(board2, lambda: app)
    monitor2.load(T0 + timedelta(minutes=8))
    assert board2.get("mailbox:support").alerted_at == T0 + timedelta(minutes=6)
    board2.failed("mailbox:support", "still refused", T0 + timedelta(minutes=9))
    step(monitor2, app, 9)
    step(monitor2, app, 30)
    assert len(alerts(app)) == 1
    board2.succeeded("mailbox:support", T0 + timedelta(minutes=31))
    step(monitor2, app, 31)
    step(monitor2, app, 32)
    mails = alerts(app)
    assert [m["Subject"] for m in mails] == ["[mailtriage] mailbox:support is failing",
                                             "[mailtriage] mailbox:support works again"]


def test_a_burst_of_reports_writes_a_row_only_on_a_change_or_every_refresh(tmp_path):
    site = alerting_site(tmp_path)
    app = site_app(site, T0)
    board = Board()
    monitor = Monitor(board, lambda: app)
    monitor.load(T0)
    for ms in range(0, 120_000, 10):                 # a report every 10 ms for two minutes, a tick every 2 s
        now = T0 + timedelta(milliseconds=ms)
        board.succeeded("mailbox:support", now)
        if ms % 2000 == 0:
            monitor.run_once(now)
    assert monitor.writes >= 2
    # database and mailbox: the first write, then one per REFRESH (30 s) each
    per_component = 1 + int(120 / REFRESH.total_seconds())
    assert monitor.writes <= 2 * per_component + 2
    board.failed("mailbox:support", "boom", T0 + timedelta(seconds=121))
    monitor.run_once(T0 + timedelta(seconds=121.5))
    assert monitor.written["mailbox:support"][1] == T0 + timedelta(seconds=121.5)   # a change: at once


def test_status_reads_the_database_with_no_daemon(tmp_path):
    site = alerting_site(tmp_path)
    app = site_app(site, T0)
    board = Board()
    monitor = Monitor(board, lambda: app)
    monitor.load(T0)
    board.failed("relay", "RelayUnavailable: connection refused", T0)
    board.succeeded("mailbox:support", T0)
    monitor.run_once(T0)
    code, out, _ = site.cli("status", "--json", now=(T0 + timedelta(minutes=1)).isoformat())
    data = json.loads(out)
    assert code == 1 and data["status"] == "failing" and data["failing"] == ["relay"]
    assert data["components"]["relay"]["last_error"] == "RelayUnavailable: connection refused"
    assert data["mailboxes"]["support"]["status"] == "ok"
    assert data["mailboxes"]["support"]["last_success"] == T0.isoformat()
    assert data["daemon"]["age_seconds"] == 60.0
    board.succeeded("relay", T0 + timedelta(minutes=2))
    monitor.run_once(T0 + timedelta(minutes=2))
    code, out, _ = site.cli("status", now=(T0 + timedelta(minutes=3)).isoformat())
    assert code == 0 and "mailtriage status: ok" in out and "relay" in out


def test_status_shows_the_sla_board_due_within_the_hour_and_breached(tmp_path):
    site = alerting_site(tmp_path)
    mail = tmp_path / "m.eml"
    mail.write_bytes(eml("Printer on fire", message_id="<sla-1@customer.example>"))
    [line] = site.ingest(mail, now=T0.isoformat())
    ref = line.split()[0]
    due = datetime.fromisoformat(site.ticket(ref)["first_response_due"])
    soon = json.loads(site.cli("status", "--json", now=(due - timedelta(minutes=30)).isoformat())[1])["sla"]
    assert (soon["due_within_hour"], soon["breached"]) == (1, 0)
    assert soon["due_soon_tickets"][0]["ref"] == ref and soon["due_soon_tickets"][0]["due"] == due.isoformat()
    early = json.loads(site.cli("status", "--json", now=(due - timedelta(minutes=61)).isoformat())[1])["sla"]
    assert (early["due_within_hour"], early["breached"]) == (0, 0)
    late = json.loads(site.cli("status", "--json", now=(due + timedelta(minutes=1)).isoformat())[1])["sla"]
    assert (late["due_within_hour"], late["breached"]) == (0, 1) and late["breached_tickets"][0]["ref"] == ref
    site.ok("sla", "tick", now=(due + timedelta(minutes=1)).isoformat())       # the sweep marks it breached
    swept = json.loads(site.cli("status", "--json", now=(due + timedelta(minutes=2)).isoformat())[1])["sla"]
    assert swept["breached"] == 1


def test_an_oauth2_token_the_provider_refused_is_a_failing_component(tmp_path):
    site = alerting_site(tmp_path)
    data = yaml.safe_load(site.config.read_text())
    data["mailboxes"][0]["imap"].update(auth="oauth2")
    data["mailboxes"][0]["imap"].pop("password_env")
    data["mailboxes"][0]["oauth2"] = {"provider": "google", "client_id": "id", "token_file": "support.token"}
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    token = site.dir / "support.token"
    token.write_text(json.dumps({"refresh_token": "r1"}))
    token.chmod(0o600)
    app = site_app(site, T0)
    board = Board()
    monitor = Monitor(board, lambda: app)
    monitor.load(T0)
    monitor.run_once(T0)
    assert board.get("oauth2:support").status == "ok"
    token.write_text(json.dumps({"refresh_token": "r1", "failing": "invalid_grant", "failing_since": T0.isoformat(),
                                 "error_description": "Token has been expired or revoked."}))
    monitor.run_once(T0 + timedelta(minutes=1))
    state = board.get("oauth2:support")
    assert state.status == "failing" and state.last_error == "invalid_grant: Token has been expired or revoked."
    code, out, _ = site.cli("status", "--json", now=(T0 + timedelta(minutes=2)).isoformat())
    assert code == 1 and json.loads(out)["failing"] == ["oauth2:support"]
