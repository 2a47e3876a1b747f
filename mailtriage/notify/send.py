"""Senders: hand a composed message to an SMTP relay or drop it in a Maildir.

A sender raises TemporaryFailure (4xx, connection trouble: try again later)
or PermanentFailure (5xx: give up); anything it returns from is delivered.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import socket
import ssl
from pathlib import Path
from typing import Protocol

from mailtriage.settings import SmtpOut


class TemporaryFailure(Exception):
    pass


class PermanentFailure(Exception):
    pass


class Sender(Protocol):
    def send(self, key: int, mail_from: str, recipients: list[str], data: bytes) -> None: ...


class MaildirSender:
    """Delivers into a Maildir; the file name is derived from the outbox row,
    so delivering the same row twice leaves one file."""

    def __init__(self, path: Path):
        self.path = path
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)

    def send(self, key: int, mail_from: str, recipients: list[str], data: bytes) -> None:
        name = f"mt-outbox-{key}.{hashlib.sha256(data).hexdigest()[:16]}"
        if (self.path / "new" / name).exists() or any((self.path / "cur").glob(name + "*")):
            return
        tmp = self.path / "tmp" / name
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path / "new" / name)
        except OSError as exc:
            raise TemporaryFailure(f"maildir {self.path}: {exc}") from exc


class SmtpSender:
    def __init__(self, settings: SmtpOut, password: str | None = None):
        self.settings = settings
        self.password = password

    def send(self, key: int, mail_from: str, recipients: list[str], data: bytes) -> None:
        cfg = self.settings
        timeout = cfg.timeout.total_seconds()
        try:
            smtp_class = smtplib.SMTP_SSL if cfg.ssl else smtplib.SMTP
            with smtp_class(cfg.host, cfg.port, timeout=timeout) as smtp:
                if cfg.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.username and self.password is not None:
                    smtp.login(cfg.username, self.password)
                refused = smtp.sendmail(mail_from, recipients, data)
        except smtplib.SMTPRecipientsRefused as exc:
            raise _classify(exc.recipients and min(code for code, _ in exc.recipients.values()),
                            f"all recipients refused: {exc.recipients}") from exc
        except smtplib.SMTPResponseException as exc:
            raise _classify(exc.smtp_code, f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        except (smtplib.SMTPException, OSError, socket.timeout) as exc:
            raise TemporaryFailure(f"{cfg.host}:{cfg.port}: {exc}") from exc
        if refused:
            # Some recipients were refused: report, but the accepted ones have it.
            raise PermanentFailure(f"refused for some recipients: {refused}")


def _classify(code: int | None, text: str) -> Exception:
    if code is not None and 500 <= code < 600:
        return PermanentFailure(text)
    return TemporaryFailure(text)


def make_sender(settings: SmtpOut, base_dir: Path) -> Sender:
    if settings.maildir:
        path = Path(settings.maildir)
        return MaildirSender(path if path.is_absolute() else base_dir / path)
    password = os.environ.get(settings.password_env) if settings.password_env else None
    return SmtpSender(settings, password)
