"""The operator's view of a running daemon, with real parts: a private
Dovecot (this module stops and restarts it), the aiosmtpd sink as the relay,
`mailtriage run` as a process serving `http.listen`.

/metrics is read with prometheus-client's own parser; /healthz, the alert
mails and `status --json` are followed through a Dovecot outage.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from daemons import DaemonProcess, daemons, imap_site  # noqa: F401  (daemons: a fixture)
from helpers import eml, make_site, need
from servers import free_port, start_dovecot, wait_for

pytestmark = pytest.mark.integration
USER = "support@example.test"
POLL = 1.0                       # poll_interval, seconds
AFTER = 2.0                      # alerts.after, seconds
OPS = "ops@example.test"


@pytest.fixture(scope="module")
def private_dovecot():
    need(Path("/usr/sbin/dovecot").exists() and shutil.which("doveadm") is not None, "Dovecot is not installed")
    server = start_dovecot(free_port())
    yield server
    if server.proc.poll() is None:
        server.stop()
    shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture(scope="module")
def running(private_dovecot, smtp_sink_control, tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("health")
    site = imap_site(root / "site", private_dovecot, poll=f"{POLL:g}s")
    data = yaml.safe_load(site.config.read_text())
    port = free_port()
    data["http"] = {"listen": f"127.0.0.1:{port}"}
    data["alerts"] = {"to": [OPS], "after": f"{AFTER:g}s"}
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    daemon = DaemonProcess(site, root / "daemon.log").wait_ready()
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: get(base, "/healthz")[1]["components"].get("mailbox:support", {}).get("status") == "ok",
             timeout=20)
    yield site, daemon, base
    daemon.close()


def get(base: str, path: str):  # type: ignore[no-untyped-def]
    try:
        with urllib.request.urlopen(base + path, timeout=5) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    return status, (json.loads(body) if path == "/healthz" else body.decode())


def messages_total(base: str) -> dict[tuple[str, str], float]:
    _, text = get(base, "/metrics")
    counts = {}
    for family in text_string_to_metric_families(text):
        if family.name == "mailtriage_messages":
            for sample in family.samples:
                if sample.name == "mailtriage_messages_total":
                    counts[(sample.labels["source"], sample.labels["outcome"])] = sample.value
    return counts


def status_json(site) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    code, out, err = site.cli("status", "--json")
    assert code in (0, 1), err
    return code, json.loads(out)


def test_the_message_counter_moves_by_exactly_the_mail_delivered(running, private_dovecot):
    site, _daemon, base = running
    before = messages_total(base)
    assert before[("imap", "new")] == 0 and before[("smtp", "duplicate")] == 0
    private_dovecot.deliver(USER, eml("VPN down", message_id="<m-imap-1@customer.example>",
                                      sender="a@customer.example"))
    private_dovecot.deliver(USER, eml("Printer jammed", message_id="<m-imap-2@customer.example>",
                                      sender="b@customer.example"))
    mail = eml("Mail server slow", message_id="<m-smtp-1@customer.example>", sender="c@customer.example")
    port = yaml.safe_load(site.config.read_text())["smtp_in"]["port"]
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("c@customer.example", [USER], mail)
        smtp.sendmail("c@customer.example", [USER], mail)          # the same bytes again: a duplicate
    expected = {("imap", "new"): 2, ("smtp", "new"): 1, ("smtp", "duplicate"): 1}

    def moved() -> dict:
        after = messages_total(base)
        return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
    wait_for(lambda: moved() == expected, timeout=20)
    _, text = get(base, "/metrics")
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["mailtriage_mailbox_up"].samples[0].labels == {"mailbox": "support"}
    assert families["mailtriage_mailbox_up"].samples[0].value == 1
    assert families["mailtriage_mailbox_last_success_timestamp_seconds"].samples[0].value > 0
    assert {s.labels["severity"] for s in families["mailtriage_sla_breaches"].samples} >= {"S1", "S2", "S3", "S4"}
    assert "mailtriage_outbox_pending" in families and "mailtriage_outbox_failed" in families


def test_the_daemons_listener_serves_the_board_beside_the_health_endpoints(running):
    """The team lead's pages are on the same listener (no users_file here: open, read only)."""
    site, _daemon, base = running
    port = yaml.safe_load(site.config.read_text())["smtp_in"]["port"]
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("d@customer.example", [USER], eml("Board <b>check</b>", sender="d@customer.example",
                                                         message_id="<m-board-1@customer.example>"))
    wait_for(lambda: "Board &lt;b&gt;check&lt;/b&gt;" in get(base, "/tickets")[1], timeout=20)
    status, page = get(base, "/")
    assert status == 200 and "SLA" in page
    assert get(base, "/healthz")[0] in (200, 503)          # still answered beside the board


def stop_hard(dovecot) -> None:  # type: ignore[no-untyped-def]
    """Stop Dovecot with its client connections: the master's SIGTERM leaves
    the imap processes of logged-in clients running (test_daemon.restart_hard)."""
    children = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()
                and _parent(entry) == dovecot.proc.pid]
    dovecot.stop()
    for pid in children:                         # this module's own Dovecot's children, by pid
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _parent(entry: Path) -> int | None:
    try:
        return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def alert_mails(sink) -> list:  # type: ignore[no-untyped-def]
    return [m.msg for m in list(sink.messages) if OPS in m.rcpt_tos]


def test_a_dovecot_outage_turns_healthz_red_alerts_once_and_recovers_once(running, private_dovecot,
                                                                          smtp_sink_control):
    site, daemon, base = running
    smtp_sink_control.reset()
    assert get(base, "/healthz")[0] == 200
    code, data = wait_for(lambda: (s := status_json(site))[1]["mailboxes"]["support"]["status"] == "ok" and s,
                          timeout=10)                 # the health job writes the row within its tick
    assert code == 0

    stop_hard(private_dovecot)
    status, body = wait_for(lambda: (r := get(base, "/healthz"))[0] == 503 and r, timeout=POLL + 5)
    assert body["status"] == "failing" and body["failing"] == ["mailbox:support"]
    assert body["components"]["mailbox:support"]["last_error"]
    code, data = wait_for(lambda: (s := status_json(site))[0] == 1 and s, timeout=10)
    assert data["failing"] == ["mailbox:support"] and data["mailboxes"]["support"]["status"] == "failing"

    [alert] = wait_for(lambda: alert_mails(smtp_sink_control), timeout=AFTER + 15)
    assert alert["Subject"] == "[mailtriage] mailbox:support is failing"
    assert alert["Auto-Submitted"] == "auto-generated"
    wait_for(lambda: status_json(site)[1]["components"]["mailbox:support"]["alerted"], timeout=10)

    private_dovecot.start()
    wait_for(lambda: get(base, "/healthz")[0] == 200, timeout=30)
    wait_for(lambda: len(alert_mails(smtp_sink_control)) == 2, timeout=20)
    code, data = wait_for(lambda: (s := status_json(site))[0] == 0 and s, timeout=10)
    assert data["status"] == "ok" and not data["components"]["mailbox:support"]["alerted"]
    subjects = [m["Subject"] for m in alert_mails(smtp_sink_control)]
    assert subjects == ["[mailtriage] mailbox:support is failing", "[mailtriage] mailbox:support works again"]
    assert "working again" in daemon.log()


def http_site(root: Path, listen: str):  # type: ignore[no-untyped-def]
    site = make_site(root, smtp_in_port=free_port())
    data = yaml.safe_load(site.config.read_text())
    data["http"] = {"listen": listen}
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    return site


def test_a_busy_http_port_stops_the_start_and_a_sighup_onto_one_keeps_the_old_listener(tmp_path, daemons):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        site = http_site(tmp_path / "site", f"127.0.0.1:{busy}")
        daemon = daemons(site)
        assert daemon.proc.wait(20) == 1                 # as a busy SMTP port: the start fails
        assert f"cannot listen on 127.0.0.1:{busy} for HTTP: [Errno 98] Address already in use" in daemon.log()

        first = free_port()
        site = http_site(tmp_path / "site2", f"127.0.0.1:{first}")
        daemon = daemons(site).wait_ready()
        assert get(f"http://127.0.0.1:{first}", "/healthz")[0] == 200
        data = yaml.safe_load(site.config.read_text())
        data["http"]["listen"] = f"127.0.0.1:{busy}"
        site.config.write_text(yaml.safe_dump(data, sort_keys=False))
        daemon.send(signal.SIGHUP)
        daemon.wait_log(f"still serving HTTP on 127.0.0.1:{first}")
        assert get(f"http://127.0.0.1:{first}", "/healthz")[0] == 200
    second = free_port()
    data["http"]["listen"] = f"127.0.0.1:{second}"
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    daemon.send(signal.SIGHUP)
    wait_for(lambda: _answers(f"http://127.0.0.1:{second}/healthz"), timeout=15)
    wait_for(lambda: not _answers(f"http://127.0.0.1:{first}/healthz"), timeout=10)   # the old one is let go
    assert daemon.stop() < 5.0


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except OSError:
        return False
