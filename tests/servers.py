"""Real servers and clients for integration tests (a pytest plugin).

* ``dovecot``   – a private Dovecot IMAP server on 127.0.0.1 (session scope)
* ``smtp_sink`` – an aiosmtpd server that records every message (cleared per test);
  ``smtp_sink_control.fail("auth" | "rcpt" | "data", reply, times, rcpt=…)`` makes
  it answer `reply` to the next `times` logins, recipients or messages (like
  Mailman's testing/mta.py); ``fail_next(n, code)`` is the DATA case.
  ``start_sink(port)`` starts another one (a relay that comes up mid-test).
* ``silent_relay`` – a TCP server that accepts connections and never answers
* ``mutt``      – the mutt mail client, to send and *reply* like a person would

Adapted from ../shared/recipes (real-mail-servers.md). Without the software a
test skips on a laptop and fails under CI=true.
"""

from __future__ import annotations

import email
import email.policy
import grp
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from helpers import need

FIXTURES = Path(__file__).resolve().parent / "fixtures"
IMAP_PORT = int(os.environ.get("TEST_IMAP_PORT", "10143"))
SMTP_PORT = int(os.environ.get("TEST_SMTP_PORT", "10025"))
USERS = {"support@example.test": "support-secret", "agent@example.test": "agent-secret"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll until predicate() is truthy (for servers and daemons, never for SLA time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


# ----------------------------------------------------------------- Dovecot
@dataclass
class Dovecot:
    host: str
    port: int
    base: Path
    conf: Path
    proc: subprocess.Popen
    users: dict = field(default_factory=lambda: dict(USERS))

    def doveadm(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["doveadm", "-c", str(self.conf), *args], input=input,
                              capture_output=True, check=True)

    def deliver(self, user: str, raw: bytes, mailbox: str = "INBOX") -> None:
        """Put a message into a mailbox as if it had just arrived (IDLE wakes up)."""
        self.doveadm("save", "-u", user, "-m", mailbox, input=raw)

    def reset(self, user: str) -> None:
        subprocess.run(["doveadm", "-c", str(self.conf), "kick", user], capture_output=True)
        shutil.rmtree(self.base / "home" / user, ignore_errors=True)

    def start(self) -> None:
        self.proc = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", str(self.conf)])
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_dovecot(port: int, prepare: Callable[[Path, str], str] | None = None) -> Dovecot:
    """A private Dovecot on 127.0.0.1:port in a fresh temp dir (also used by bench/).
    `prepare(base, conf)` may change the config text and add files (oauth2_servers.py)."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(f"127.0.0.1:{port} already in use (stale dovecot?)")
    user = "dovecot" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    base = Path(tempfile.mkdtemp(prefix="dovecot-test."))   # not tmp_path: its parents are 0700
    base.chmod(0o755)
    (base / "home").mkdir()
    if os.geteuid() == 0:
        shutil.chown(base / "home", user, group)
    text = (FIXTURES / "dovecot.conf.in").read_text()
    for key, value in {"@BASE@": str(base), "@PORT@": str(port), "@USER@": user, "@GROUP@": group}.items():
        text = text.replace(key, value)
    shutil.copy(FIXTURES / "dovecot-users", base / "users")
    if prepare is not None:
        text = prepare(base, text)
    conf = base / "dovecot.conf"
    conf.write_text(text)
    server = Dovecot("127.0.0.1", port, base, conf, None)  # type: ignore[arg-type]
    server.start()
    return server


@pytest.fixture(scope="session")
def dovecot():
    need(Path("/usr/sbin/dovecot").exists() and shutil.which("doveadm") is not None,
         "Dovecot is not installed (apt-get install dovecot-imapd)")
    server = start_dovecot(IMAP_PORT)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


# -------------------------------------------------------------- SMTP sink
@dataclass
class Captured:
    mail_from: str
    rcpt_tos: list
    raw: bytes                                # exactly as sent (CRLF line ends)
    mail_options: list = field(default_factory=list)     # MAIL FROM parameters (BODY=8BITMIME, SIZE=…)

    @property
    def msg(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


class SinkHandler:
    """Records what it accepts; answers scripted failures first. AUTH takes
    any user and password (and records them) unless a failure is scripted."""

    STAGES = ("auth", "rcpt", "data")

    def __init__(self) -> None:
        self.messages: list[Captured] = []
        self.logins: list[str] = []                 # the user of every AUTH attempt, refused ones too
        self.lock = threading.Lock()
        self.scripted: list[list] = []              # [stage, rcpt or None, reply, times left]

    def fail(self, stage: str, reply: str, times: int = 1, *, rcpt: str | None = None) -> None:
        """Answer `reply` to the next `times` AUTH / RCPT (to `rcpt`, else any) / DATA commands."""
        assert stage in self.STAGES and (rcpt is None or stage == "rcpt")
        with self.lock:
            self.scripted.append([stage, rcpt, reply, times])

    def fail_next(self, count: int, reply: str = "451 4.3.0 try again later") -> None:
        """Refuse the next `count` messages at DATA (0: stop refusing)."""
        with self.lock:
            self.scripted = [s for s in self.scripted if s[0] != "data"]
        if count:
            self.fail("data", reply, count)

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.logins.clear()
            self.scripted.clear()

    def _scripted(self, stage: str, rcpt: str | None = None) -> str | None:
        with self.lock:
            for entry in self.scripted:
                if entry[0] == stage and entry[1] in (None, rcpt) and entry[3] > 0:
                    entry[3] -= 1
                    return entry[2]
        return None

    def authenticate(self, server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        self.logins.append(getattr(auth_data, "login", b"").decode())
        reply = self._scripted("auth")
        if reply is not None:
            return AuthResult(success=False, handled=False, message=reply)
        return AuthResult(success=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        reply = self._scripted("rcpt", address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        reply = self._scripted("data")
        if reply is not None:
            return reply
        with self.lock:
            self.messages.append(Captured(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content, list(envelope.mail_options)))
        return "250 Message accepted for delivery"


def start_sink(port: int) -> tuple[Controller, SinkHandler]:
    """A recording sink on 127.0.0.1:port that offers AUTH PLAIN without TLS (loopback
    only; one mechanism, so one login is one AUTH command: smtplib tries each one offered)."""
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port, authenticator=handler.authenticate,
                            auth_require_tls=False, auth_exclude_mechanism=["LOGIN"])
    controller.start()
    return controller, handler


@pytest.fixture(scope="session")
def smtp_sink_control():
    controller, handler = start_sink(SMTP_PORT)
    yield handler
    controller.stop()


@pytest.fixture
def smtp_sink(smtp_sink_control):
    smtp_sink_control.reset()
    return smtp_sink_control.messages          # list[Captured], filled as mail arrives


@pytest.fixture
def silent_relay():
    """The port of a server that accepts TCP connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not done.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    done.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


# -------------------------------------------------------------------- mutt
class Mutt:
    """Drive mutt non-interactively. Sending works in batch mode; replying needs
    mutt's curses UI, so it runs under a pseudo-terminal from script(1)."""

    def __init__(self, home: Path, smtp_port: int = SMTP_PORT):
        self.home = home
        self.smtp_port = smtp_port
        shutil.copy(FIXTURES / "muttrc", home / "muttrc")
        shutil.copy(FIXTURES / "reply-editor.sh", home / "reply-editor.sh")
        (home / "reply-editor.sh").chmod(0o755)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                    "TERM": "xterm", "LANG": "C.UTF-8"}

    def _base(self, from_: str | None, extra: tuple[str, ...]) -> list[str]:
        cmd = ["mutt", "-n", "-F", str(self.home / "muttrc"), "-e", f"set smtp_url=smtp://127.0.0.1:{self.smtp_port}"]
        if from_:
            cmd += ["-e", f"set from='{from_}'"]
        for line in extra:
            cmd += ["-e", line]
        return cmd

    def send(self, to, subject: str, body: str, from_: str | None = None, attachments=(), extra=()):  # type: ignore[no-untyped-def]
        cmd = self._base(from_, tuple(extra)) + ["-s", subject]
        if attachments:
            cmd += ["-a", *map(str, attachments)]
        cmd += ["--", *([to] if isinstance(to, str) else to)]
        subprocess.run(cmd, input=body.encode(), env=self.env, check=True, timeout=30, capture_output=True)

    def reply(self, mailbox, text: str, from_: str | None = None, search: str | None = None,  # type: ignore[no-untyped-def]
              group: bool = False, extra=(), after: str | None = None, attachments=()):
        """Reply to the first message of `mailbox` (an mbox path or imap:// URL), or
        to the first one matching the mutt pattern `search` (e.g. "~i <msg-id>").
        `after`: answer inline, under the first quoted line containing it.
        `attachments`: files attached in the compose menu, as a person would."""
        attach = "".join(f"<attach-file>{path}<enter>" for path in attachments)
        keys = (f"<search>{search}<enter>" if search else "") + \
               ("<group-reply>" if group else "<reply>") + attach + "<send-message><quit>"
        (self.home / "actions.rc").write_text(f'push "{keys}"\n')
        cmd = self._base(from_, tuple(extra)) + ["-R", "-f", str(mailbox),
                                                 "-e", f"source {self.home / 'actions.rc'}"]
        env = dict(self.env, REPLY_TEXT=text, **({"REPLY_AFTER": after} if after else {}))
        out = subprocess.run(["script", "-qec", " ".join(shlex.quote(c) for c in cmd), "/dev/null"], env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"mutt reply failed ({out.returncode}): {out.stdout[-2000:]!r}")


@pytest.fixture
def mutt(tmp_path):
    need(shutil.which("mutt") is not None and shutil.which("script") is not None,
         "mutt is not installed (apt-get install mutt)")
    home = tmp_path / "mutt-home"
    home.mkdir()
    return Mutt(home)
