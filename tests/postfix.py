"""A real Postfix (Debian's `postfix`) delivering to mailtriage through pipe(8) (a pytest plugin).

``postfix_pipe`` (session) starts a private Postfix instance: its config,
queue and log in a temp dir (``postfix -c DIR start``), smtpd on a free port
of 127.0.0.1 only, mail for support@example.test handed to
``python -m mailtriage --config SITE/mailtriage.yaml ingest`` by the pipe(8)
service of tests/fixtures/postfix/master.cf.in, as the unprivileged user
``nobody``, and the customers' domain customer.test delivered by virtual(8)
into Maildirs, where a bounce would land. It stops the instance at the end.

Postfix's master starts only as root, and needs the `postfix` package:
without either the tests skip on a laptop and fail under CI=true.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import smtplib
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import ROOT, make_site, need
from servers import FIXTURES, free_port, wait_for, wait_port

PIPE_USER = "nobody"


@dataclass
class PipeSite:
    """The mailtriage site the pipe delivers to; read it as the pipe's user, so
    that every file of the SQLite database stays that user's."""

    dir: Path
    config: Path
    command: list[str]               # how PIPE_USER runs `python -m mailtriage`

    @property
    def database_dir(self) -> Path:
        return self.dir / "db"

    def cli(self, *args: str) -> str:
        out = subprocess.run(["runuser", "-u", PIPE_USER, "--", *self.command, "--config", str(self.config), *args],
                             capture_output=True, text=True, timeout=60, env=_plain_env())
        assert out.returncode == 0, f"mailtriage {' '.join(args)} exited {out.returncode}: {out.stderr}"
        return out.stdout

    def tickets(self) -> list[dict]:
        return json.loads(self.cli("tickets", "list", "--json"))


@dataclass
class Postfix:
    base: Path
    conf: Path
    port: int
    site: PipeSite

    def send(self, raw: bytes, sender: str = "carla@customer.test", rcpt: str = "support@example.test") -> str:
        """Hand a message to smtpd; returns Postfix's queue id."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
            smtp.ehlo("client.customer.test")
            smtp.mail(sender)
            code, reply = smtp.rcpt(rcpt)
            assert code == 250, reply
            code, reply = smtp.data(raw)
        assert code == 250, reply
        return reply.decode().rsplit(" ", 1)[-1]             # "2.0.0 Ok: queued as 4F2A21A8C1"

    def queue(self) -> list[dict]:
        """`postqueue -j`: one dict per queued message (queue_name, sender, recipients, delay_reason…)."""
        out = self._run("postqueue", "-j")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self) -> None:
        self._run("postqueue", "-f")

    def log(self) -> str:
        path = self.base / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def deliveries(self, queue_id: str) -> list[str]:
        """The log's delivery lines (`to=<…>, relay=…, status=…`) for one queue id."""
        return [line for line in self.log().splitlines() if f" {queue_id}: to=<" in line]

    def wait_delivery(self, queue_id: str, status: str, count: int = 1) -> str:
        """Poll the log until the queue id's `count`-th delivery attempt is logged; returns it."""
        lines = wait_for(lambda: len(self.deliveries(queue_id)) >= count and self.deliveries(queue_id), timeout=30)
        line = lines[count - 1]
        assert f"status={status}" in line, line
        return line

    def mailbox(self, user: str = "carla") -> list[bytes]:
        """What reached a customer's Maildir (a bounce, for these tests)."""
        box = self.base / "mail" / user
        return [p.read_bytes() for sub in ("new", "cur") if (box / sub).is_dir() for p in sorted((box / sub).iterdir())]

    def start(self) -> None:
        self._run("postfix", "start")
        wait_port(self.port, timeout=30)

    def stop(self) -> None:
        self._run("postfix", "stop", check=False)
        pid = self.base / "queue" / "pid" / "master.pid"
        wait_for(lambda: not pid.exists() or not _alive(pid), timeout=20)

    def _run(self, program: str, *args: str, check: bool = True) -> str:
        out = subprocess.run([f"/usr/sbin/{program}", "-c", str(self.conf), *args], capture_output=True,
                             text=True, timeout=60)
        if check and out.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} exited {out.returncode}: {out.stderr}{self.log()[-3000:]}")
        return out.stdout


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (ValueError, OSError):
        return False
    return True


def _plain_env() -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def pipe_command(user: str) -> list[str]:
    """How `user` runs this checkout's mailtriage: the tests' interpreter when
    the user can reach it, else the system's Python of the same version with
    the virtualenv's packages (an interpreter under a private home, such as
    pyenv's in /root, is out of an unprivileged user's reach)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    packages = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    for python, path in ((sys.executable, [str(ROOT)]), (f"/usr/bin/python{version}", [str(ROOT), *packages])):
        command = ["/usr/bin/env", f"PYTHONPATH={':'.join(path)}", python, "-m", "mailtriage"]
        probe = subprocess.run(["runuser", "-u", user, "--", *command, "--help"], capture_output=True,
                               timeout=60, env=_plain_env())
        if probe.returncode == 0:
            return command
    if _open_the_way(user):
        return pipe_command(user)
    need(False, f"user {user} can run no Python that imports mailtriage from {ROOT}")
    raise AssertionError("unreachable")


def _open_the_way(user: str) -> bool:
    """A checkout under a private folder (a CI clone under /root): give the
    folders above it the traverse bit (x for others, not read), once, so the
    pipe user can reach the code and its packages. True if anything changed."""
    changed = False
    for folder in [*reversed(ROOT.parents), ROOT]:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            folder.chmod(mode | 0o001)
            changed = True
    return changed


def start_postfix() -> Postfix:
    user = pwd.getpwnam(PIPE_USER)
    base = Path(tempfile.mkdtemp(prefix="postfix-test."))   # not tmp_path: Postfix's users must get through
    base.chmod(0o755)
    for folder, owner in (("conf", "root"), ("queue", "root"), ("data", "postfix"), ("mail", PIPE_USER)):
        (base / folder).mkdir()
        shutil.chown(base / folder, owner)
    site = make_site(base / "site", database="sqlite:///db/mailtriage.db")
    site.dir.chmod(0o755)
    (site.dir / "db").mkdir()
    shutil.chown(site.dir / "db", PIPE_USER)
    pipe = PipeSite(site.dir, site.config, pipe_command(PIPE_USER))
    port = free_port()
    values = {"@BASE@": str(base), "@PORT@": str(port), "@UID@": str(user.pw_uid), "@GID@": str(user.pw_gid),
              "@USER@": PIPE_USER, "@PIPE@": " ".join(pipe.command), "@CONFIG@": str(site.config)}
    for name in ("main.cf", "master.cf"):
        text = (FIXTURES / "postfix" / f"{name}.in").read_text()
        for key, value in values.items():
            text = text.replace(key, value)
        (base / "conf" / name).write_text(text)
    server = Postfix(base, base / "conf", port, pipe)
    server.start()
    pipe.cli("db", "upgrade")                  # the database exists, and is the pipe user's
    return server


@pytest.fixture(scope="session")
def postfix_pipe():
    need(Path("/usr/sbin/postfix").exists() and Path("/usr/sbin/postqueue").exists(),
         "Postfix is not installed (apt-get install postfix)")
    need(os.geteuid() == 0, "a private Postfix starts only as root")
    need(shutil.which("runuser") is not None, "runuser (util-linux) is missing")
    server = start_postfix()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)
