"""Reply tokens (issue 16): our ticket mail says Reply-To a signed
plus-address; a vendor's reply with no tag and no References, sent there by
swaks through our real SMTP listener, threads to the ticket. A forged or a
truncated token threads nothing and is recorded."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from email import message_from_bytes
from email.policy import default

import pytest

from helpers import eml, make_site, need
from mailtriage.app import build_app, load_config
from mailtriage.clock import FixedClock, parse_instant
from mailtriage.ingest.smtp import Listener
from servers import free_port

NOW = "2026-03-02T09:00:00+00:00"
SECRET = "correct horse battery staple 4711"


@pytest.fixture
def site(tmp_path, monkeypatch, database_url):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MT_REPLY_SECRET", SECRET)
    site = make_site(tmp_path / "site", smtp_in_port=free_port(), database=database_url,
                     agent_notices="[new, reply]")
    site.config.write_text(site.config.read_text() + "reply_tokens: {secret_env: MT_REPLY_SECRET}\n")
    return site


def _swaks(port: int, to: str, subject: str, message_id: str) -> str:
    need(shutil.which("swaks") is not None, "swaks is not installed (apt-get install swaks)")
    out = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--from", "cases@partner.example", "--to", to,
         "--header", f"From: Partner Support <cases@partner.example>", "--header", f"Subject: {subject}",
         "--header", f"Message-Id: {message_id}", "--body", "Case 4711: we shipped a new board."],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_a_reply_to_the_token_threads_and_forged_or_truncated_ones_do_not(site, caplog):
    assert site.cli("ingest", now=NOW, stdin=eml("Printer on fire", message_id="<c-1@customer.example>"))[1] \
        .strip() == "MT-1 new"
    sent = [message_from_bytes(raw, policy=default) for raw in site.outbox_files()]
    ack = next(m for m in sent if m["To"] == "Carla Customer <carla@customer.example>")
    notice = next(m for m in sent if m["To"] == "l1-team@example.test")
    token = ack["Reply-To"]
    local, _, domain = token.partition("@")
    assert domain == "example.test" and local.startswith("support+MT-1.") and len(local.rpartition(".")[2]) == 10
    assert notice["Reply-To"] == token                      # the L4 vendor's notices carry it as well
    signature = local.rpartition(".")[2]

    app = build_app(load_config(site.config), FixedClock(parse_instant(NOW)))
    listener = Listener(lambda: app)
    listener.start()
    caplog.set_level(logging.INFO)
    try:
        port = app.settings.smtp_in.port
        out = _swaks(port, token, "Your case 4711", "<v-1@partner.example>")
        assert "<-  250 2.0.0 accepted MT-1" in out
        forged = token.replace(signature, "a" * 10)
        truncated = token.replace(signature, signature[:9])
        assert "accepted MT-2" in _swaks(port, forged, "Your case 4712", "<v-2@partner.example>")
        assert "accepted MT-3" in _swaks(port, truncated, "Your case 4713", "<v-3@partner.example>")
    finally:
        listener.stop()
        app.store.close()

    ticket = site.ticket("MT-1")
    [vendor] = [m for m in ticket["messages"] if m["message_id"] == "<v-1@partner.example>"]
    assert vendor["threaded_via"] == "reply-token"
    assert vendor["thread_evidence"] == f"sent to {token.lower()}, a valid reply token of MT-1"
    assert token.lower() not in ticket["participants"]        # our own address never becomes a customer

    for ref, bad in (("MT-2", forged), ("MT-3", truncated)):
        refused = site.ticket(ref)
        assert refused["messages"][0]["threaded_via"] == "new"
        [event] = [e for e in refused["events"] if e["type"] == "reply-token-refused"]
        assert bad.lower() in event["detail"]
        assert any(bad.lower() in r.getMessage() and "bad signature" in r.getMessage() for r in caplog.records)
    assert SECRET not in caplog.text

    # explain says the same, storing nothing.
    path = site.dir / "vendor.eml"
    path.write_bytes(eml("Your case 4711", "Another update.", sender="cases@partner.example", to=token,
                         message_id="<v-4@partner.example>"))
    report = json.loads(site.ok("explain", str(path), "--json"))
    assert report["thread"]["ticket"] == "MT-1" and report["thread"]["via"] == "reply-token"
    path.write_bytes(eml("Your case 4711", "Another update.", sender="cases@partner.example", to=forged,
                         message_id="<v-5@partner.example>"))
    report = json.loads(site.ok("explain", str(path), "--json"))
    assert report["thread"]["via"] == "new" and "is not valid (bad signature)" in report["thread"]["evidence"]


def test_the_secret_must_be_in_the_environment(site, monkeypatch):
    monkeypatch.delenv("MT_REPLY_SECRET")
    code, out, err = site.cli("config", "check")
    assert code == 2
    line = site.config.read_text().splitlines().index("reply_tokens: {secret_env: MT_REPLY_SECRET}") + 1
    assert f"{site.config}:{line}: reply_tokens: the environment variable MT_REPLY_SECRET is not set" in out + err
    monkeypatch.setenv("MT_REPLY_SECRET", " ")
    code, out, err = site.cli("config", "check")
    assert code == 2 and "MT_REPLY_SECRET is empty" in out + err
    monkeypatch.setenv("MT_REPLY_SECRET", SECRET)
    site.config.write_text(site.config.read_text().replace("{secret_env: MT_REPLY_SECRET}",
                                                           "{secret_env: MT_REPLY_SECRET, secret: hunter2}"))
    code, out, err = site.cli("config", "check")
    assert code == 2 and "the secret is never written in the config file" in out + err
