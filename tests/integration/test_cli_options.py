"""`--now` after the command does what it does before it: the clock the
command runs on (`mailtriage --now T ingest a.eml` = `mailtriage ingest --now T a.eml`)."""

from __future__ import annotations

import contextlib
import io
import json

from helpers import eml
from mailtriage.cli import main

EARLY, LATE = "2026-03-02T09:00:00+00:00", "2026-03-02T11:00:00+00:00"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_now_after_ingest_and_before_it_stamp_the_same_clock(site):
    (site.dir / "a.eml").write_bytes(eml("First", message_id="<a@customer.example>"))
    (site.dir / "b.eml").write_bytes(eml("Second", message_id="<b@customer.example>"))
    config = str(site.config)
    assert run("ingest", "--config", config, "--now", EARLY, str(site.dir / "a.eml"))[0] == 0
    assert run("--config", config, "--now", EARLY, "ingest", str(site.dir / "b.eml"))[0] == 0
    first, second = site.tickets()
    assert first["created_at"] == second["created_at"] == EARLY


def test_now_after_sla_tick_and_tickets_list(site):
    (site.dir / "a.eml").write_bytes(eml("VPN is down", "Nobody can work."))    # S1: 15 minutes to answer
    site.ingest(site.dir / "a.eml", now=EARLY)
    code, out = run("sla", "tick", "--now", LATE, "--config", str(site.config))
    assert code == 0 and "swept 1 ticket(s)" in out and " 0 breach" not in out
    code, out = run("tickets", "list", "--json", "-v", "--config", str(site.config), "--now", LATE)
    assert code == 0 and json.loads(out)[0]["sla_state"] == "breached"
