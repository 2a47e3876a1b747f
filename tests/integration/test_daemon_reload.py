"""`mailtriage run` as a real process, told to reload or refusing to start
(issue 17, items 8, 10, 13): SIGHUP onto a busy port keeps the old
listener, a template that cannot render keeps the running config, and a
relay login without its password stops the start."""

from __future__ import annotations

import email
import email.policy
import signal
import smtplib
import socket

import pytest
import yaml

from daemons import daemons  # noqa: F401  (the fixture)
from helpers import Site, eml, make_site
from servers import SMTP_PORT, free_port, wait_for


def smtp_in_port(site: Site) -> int:
    return int(yaml.safe_load(site.config.read_text())["smtp_in"]["port"])


def set_smtp_in_port(site: Site, port: int) -> None:
    data = yaml.safe_load(site.config.read_text())
    data["smtp_in"]["port"] = port
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))


def rcpt(port: int) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("anna@customer.example")
        return smtp.rcpt("support@example.test")[0]


def test_sighup_onto_a_busy_port_keeps_the_old_listener_and_the_next_sighup_retries(tmp_path, daemons):
    site = make_site(tmp_path / "site", smtp_in_port=free_port())
    old_port = smtp_in_port(site)
    daemon = daemons(site).wait_ready()
    with socket.socket() as busy:                        # another service holds the new port
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        new_port = busy.getsockname()[1]
        set_smtp_in_port(site, new_port)
        daemon.send(signal.SIGHUP)
        daemon.wait_log(f"still listening on 127.0.0.1:{old_port}. The next SIGHUP tries again")
        assert f"cannot listen on 127.0.0.1:{new_port}" in daemon.log()
        assert rcpt(old_port) == 250                     # mail still comes in
    daemon.send(signal.SIGHUP)                           # the port is free now
    daemon.wait_log(f"listening for SMTP on 127.0.0.1:{new_port}")
    assert rcpt(new_port) == 250
    with pytest.raises(ConnectionRefusedError):
        rcpt(old_port)
    assert daemon.proc.poll() is None


ACK = "Subject: [{{ ref_tag }}] Received: {{ subject }}\n\nWe have your mail.\n-- \n{{ from_name }}\n"


def test_sighup_with_a_template_that_cannot_render_keeps_the_running_templates(tmp_path, daemons):
    site = make_site(tmp_path / "site", smtp_in_port=free_port())
    template = site.dir / "templates" / "acknowledgement.txt"
    template.write_text(ACK)
    daemon = daemons(site).wait_ready()
    template.write_text(ACK.replace("{{ from_name }}", "{{ ticket.requestor }}"))
    daemon.send(signal.SIGHUP)
    daemon.wait_log("does not validate; keeping the running configuration")
    assert (f"{template}:5: template acknowledgement.txt cannot be rendered: UndefinedError: 'dict object' "
            "has no attribute 'requestor' (rendering it with sample data)") in daemon.log()

    with smtplib.SMTP("127.0.0.1", smtp_in_port(site), timeout=10) as smtp:
        smtp.sendmail("carla@customer.example", ["support@example.test"], eml("Printer on fire"))
    outbox = site.dir / "outbox" / "new"
    [ack] = wait_for(lambda: list(outbox.iterdir()) if outbox.is_dir() else [], timeout=15)
    msg = email.message_from_bytes(ack.read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "[MT-1] Received: Printer on fire"      # the running template, not the file now
    assert "We have your mail." in msg.get_content()


def relay_site(tmp_path, **relay: str) -> Site:  # type: ignore[no-untyped-def]
    site = make_site(tmp_path / "site", smtp_in_port=free_port(),
                     smtp_out=yaml.safe_dump({"host": "127.0.0.1", "port": SMTP_PORT, "username": "mailtriage",
                                              **relay}, default_flow_style=True).strip())
    return site


def test_a_relay_login_whose_password_is_not_in_the_environment_stops_the_start(tmp_path, daemons):
    site = relay_site(tmp_path, password_env="MT_TEST_SMTP_PASSWORD")
    daemon = daemons(site, env={"MT_TEST_SMTP_PASSWORD": None})
    assert daemon.proc.wait(30) == 2
    assert ("smtp_out: MT_TEST_SMTP_PASSWORD is not set (the password of mailtriage at the relay)"
            in daemon.log())
    code, _out, err = site.cli("outbox", "flush")       # nor does a flush from cron go out without AUTH
    assert code == 2 and "MT_TEST_SMTP_PASSWORD is not set" in err



def test_the_daemon_says_at_start_and_at_each_reload_which_tier_nobody_hears_of(tmp_path, daemons):
    site = make_site(tmp_path / "site", smtp_in_port=free_port())
    data = yaml.safe_load(site.config.read_text())
    data["tiers"]["L4"] = {"notify": []}
    site.config.write_text(yaml.safe_dump(data, sort_keys=False))
    daemon = daemons(site).wait_ready()
    line = next(n for n, text in enumerate(site.config.read_text().splitlines(), 1) if "L4:" in text) + 1
    warning = f"WARNING mailtriage.daemon: config: {site.config}:{line}: warning: tiers.L4.notify is empty"
    assert daemon.log().count(warning) == 1
    daemon.send(signal.SIGHUP)
    daemon.wait_log("configuration reloaded")
    assert daemon.log().count(warning) == 2
