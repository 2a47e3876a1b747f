"""The daily digest: the real daemon on an injected clock (`--now`), the
aiosmtpd sink as the relay; `digest.run_once` in-process on a clock the test
moves; `mailtriage digest` as an operator types it."""

from __future__ import annotations

import textwrap
import pytest
import yaml

from daemons import daemons  # noqa: F401  (the fixture)
from helpers import eml, make_site, site_app
from mailtriage.clock import parse_instant
from mailtriage.sla import digest
from servers import SMTP_PORT, free_port, wait_for

LEAD = "lead@example.test"
MONDAY_8 = "2026-03-02T08:00:00+01:00"          # Europe/Amsterdam, a working day of `office`
RELAY = (f"{{host: 127.0.0.1, port: {SMTP_PORT}, timeout: 5s, retry_first: 0.2, retry_max: 1s, "
         "max_attempts: 50}")


def digest_site(root, *, smtp_out: str = RELAY, database: str | None = None):  # type: ignore[no-untyped-def]
    site = make_site(root, smtp_out=smtp_out, smtp_in_port=free_port(), database=database)
    with site.config.open("a") as config:
        config.write('digest: {to: [lead@example.test], at: "08:00", calendar: office}\n')
    return site


def fill(site) -> None:  # type: ignore[no-untyped-def]
    """MT-1: an S1 outage on Friday, breached (first response and resolution)
    by Friday's sweep. MT-2: an S3 mail on Monday before opening, with a subject
    that looks like a template: first response 09:00 and resolution 11:00 today."""
    (site.dir / "outage.eml").write_bytes(eml("Server down", "Nobody can work.", message_id="<o@customer.example>"))
    (site.dir / "printer.eml").write_bytes(eml("Printer {{ 7*7 }} jammed", "Paper stuck.",
                                               sender="dan@customer.example", message_id="<p@customer.example>"))
    assert site.ingest(site.dir / "outage.eml", now="2026-02-27T10:00:00+01:00") == ["MT-1 new"]
    assert "2 breach(es)" in site.ok("sla", "tick", now="2026-02-27T12:30:00+01:00")
    assert site.ingest(site.dir / "printer.eml", now="2026-03-02T07:00:00+01:00") == ["MT-2 new"]


def digests(sink) -> list:  # type: ignore[no-untyped-def]
    return [c for c in sink if LEAD in c.rcpt_tos]


def test_the_daemon_sends_the_monday_digest_at_eight_once_and_not_again_after_a_restart(
        tmp_path, daemons, smtp_sink):  # noqa: F811
    site = digest_site(tmp_path / "site")
    fill(site)
    # MT-3: an S1 on Sunday that no sweep saw (no daemon ran): the daemon's first
    # sweep at 08:00 records its breaches before the digest counts Sunday's.
    (site.dir / "sunday.eml").write_bytes(eml("Network down", "Nobody can work.", sender="eve@customer.example",
                                              message_id="<s@customer.example>"))
    assert site.ingest(site.dir / "sunday.eml", now="2026-03-01T10:00:00+01:00") == ["MT-3 new"]
    first = daemons(site, "--now", MONDAY_8).wait_ready()
    wait_for(lambda: digests(smtp_sink), timeout=20)
    [mail] = digests(smtp_sink)
    msg = mail.msg
    assert msg["Subject"] == "Support digest Monday 2026-03-02: 3 open, 2 due today, 4 breached"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["To"] == LEAD
    body = msg.get_content()
    tier = site.ticket("MT-1")["tier"]                       # escalated by Friday's breaches
    assert site.ticket("MT-3")["tier"] == tier                # … and MT-3 as far, by Monday's first sweep
    assert f"  {tier}         2    2    0    0    0" in body
    assert "  L1         1    0    0    1    0" in body
    assert 'MT-2  S3 L1  first response due Mon 2026-03-02 09:00 CET  "Printer {{ 7*7 }} jammed"' in body
    assert 'MT-2  S3 L1  resolution due Mon 2026-03-02 11:00 CET  "Printer {{ 7*7 }} jammed"' in body
    assert f'MT-1  S1 {tier}  first response was due Fri 2026-02-27 10:15 CET  "Server down"' in body
    assert f'MT-1  S1 {tier}  resolution was due Fri 2026-02-27 11:00 CET  "Server down"' in body
    assert f'MT-3  S1 {tier}  first response was due Sun 2026-03-01 10:15 CET  "Network down"' in body
    assert "Breached since Friday 2026-02-27: 4" in body
    first.stop()

    # Down at eight, back at 08:20 the same day: that digest went already, so none goes.
    second = daemons(site, "--now", "2026-03-02T08:20:00+01:00").wait_ready()
    second.wait_log("digest: the digest of 2026-03-02 was sent at 2026-03-02T07:00:00+00:00")
    wait_for(lambda: site.ok("outbox", "list").strip() == "", timeout=15)      # all sent: nothing new queued
    assert len(digests(smtp_sink)) == 1
    assert second.stop() < 10


@pytest.mark.parametrize("now, day", [("2026-03-07T08:00:00+01:00", "Saturday 2026-03-07"),
                                      ("2026-04-27T08:30:00+02:00", "Monday 2026-04-27")])   # King's Day
def test_no_digest_on_a_weekend_or_a_public_holiday_of_the_calendar(
        tmp_path, daemons, smtp_sink, now, day):  # noqa: F811
    site = digest_site(tmp_path / "site")
    daemon = daemons(site, "--now", now).wait_ready()
    daemon.wait_log(f"digest: {day} is no working day of calendar office")
    assert daemon.stop() < 10
    assert digests(smtp_sink) == []
    assert "digest" not in site.ok("outbox", "list", "--all")


def test_the_digest_job_waits_for_eight_sends_once_and_a_late_start_still_sends(tmp_path, database_url):
    """What the daemon's job calls every 30 s, on a clock the test moves, on SQLite and PostgreSQL."""
    site = digest_site(tmp_path / "site", smtp_out="{maildir: ./outbox}", database=database_url)
    fill(site)
    app = site_app(site, parse_instant("2026-03-02T07:59:00+01:00"))
    try:
        before, _ = digest.run_once(app, app.clock.now())
        assert not before.sent and before.why == "not before 08:00 in calendar office's time zone"
        app.clock.set(parse_instant("2026-03-02T08:20:00+01:00"))       # the daemon was down at eight
        late, text = digest.run_once(app, app.clock.now())
        assert late.sent and late.day is not None and late.day.isoformat() == "2026-03-02"
        assert text.startswith("Subject: Support digest Monday 2026-03-02: 2 open, 2 due today, 2 breached")
        again, _ = digest.run_once(app, parse_instant("2026-03-02T19:00:00+01:00"))
        assert not again.sent and "was sent at" in again.why
        tuesday, text = digest.run_once(app, parse_instant("2026-03-03T08:00:30+01:00"))
        assert tuesday.sent and "Breached since Monday 2026-03-02: 0" in text     # Friday's were Monday's news
    finally:
        app.store.close()
    mails = [m for m in site.outbox_files() if b"Support digest" in m]
    assert len(mails) == 2


def test_the_digest_command_previews_sends_once_and_says_why_not(tmp_path):
    site = digest_site(tmp_path / "site", smtp_out="{maildir: ./outbox}")
    fill(site)
    preview = site.ok("digest", "--dry-run", now="2026-03-02T07:30:00+01:00")
    assert preview.startswith("Subject: Support digest Monday 2026-03-02: 2 open")
    assert [m for m in site.outbox_files() if b"Support digest" in m] == []   # a preview stores nothing
    sent = site.ok("digest", now="2026-03-02T07:30:00+01:00")          # before eight: by hand, it goes now
    assert sent.startswith("digest of 2026-03-02 sent (<mt.")
    assert "was sent at" in site.ok("digest", now=MONDAY_8)
    assert site.ok("digest", now="2026-04-27T09:00:00+02:00").strip() == \
        "no digest: Monday 2026-04-27 is no working day of calendar office"
    assert len([m for m in site.outbox_files() if b"Support digest" in m]) == 1


def test_a_digest_without_a_calendar_or_with_a_bad_time_is_a_config_error_at_its_line(tmp_path):
    site = make_site(tmp_path / "site")
    with site.config.open("a") as config:
        config.write(textwrap.dedent("""\
            digest:
              to: [lead@example.test]
              at: "25:00"
              calendar: ofice
            """))
    code, _out, err = site.cli("config", "check")
    lines = len(site.config.read_text().splitlines())
    assert code == 2
    assert f"{site.config}:{lines - 1}: digest.at: '25:00' is not a time of day HH:MM (00:00 to 23:59)" in err
    assert f"{site.config}:{lines}: digest.calendar: no calendar named 'ofice'" in err
    data = yaml.safe_load(site.config.read_text())
    data["digest"] = {"to": [LEAD], "at": 630, "calendar": "office"}     # what YAML makes of at: 10:30
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    code, _out, err = site.cli("config", "check")
    assert code == 2 and 'digest.at: write the time of day in quotes ("HH:MM")' in err


def test_two_daemons_due_at_once_on_postgresql_send_one_digest(tmp_path, pg_url):
    """Another daemon has inserted the day's row and not committed yet: this
    one's insert waits for it, then finds the day taken, and its outbox row
    goes with its rolled-back transaction."""
    import threading

    from sqlalchemy import create_engine, text

    site = digest_site(tmp_path / "site", smtp_out="{maildir: ./outbox}", database=pg_url)
    app = site_app(site, parse_instant(MONDAY_8))
    other = create_engine(site.database_url())
    results: list = []
    try:
        with other.connect() as conn:
            conn.execute(text("INSERT INTO digests (day, calendar, sent_at, message_id) "
                              "VALUES ('2026-03-02', 'office', now(), '<other@example.test>')"))  # not committed
            worker = threading.Thread(target=lambda: results.append(digest.run_once(app, app.clock.now())[0]))
            worker.start()
            wait_for(lambda: conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                               "AND datname = current_database()")).scalar(), timeout=20)
            conn.commit()
        worker.join(20)
    finally:
        other.dispose()
        app.store.close()
    [result] = results
    assert not result.sent and result.why == "the digest of 2026-03-02 was sent by another process"
    assert "digest" not in site.ok("outbox", "list", "--all")
