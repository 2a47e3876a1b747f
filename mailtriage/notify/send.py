"""Senders: hand a composed message to the outgoing SMTP relay or drop it in a Maildir.

A sender raises DeliveryDeferred (4xx, connection trouble: try again later)
or DeliveryRefused (5xx: give up); anything it returns from is delivered.
The SMTP sender keeps its connection for a whole flush (one TCP and TLS
handshake for many messages) and the caller closes it at the end.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
from pathlib import Path
from typing import Protocol

from mailtriage.config.values import SmtpOut
from mailtriage.errors import DeliveryDeferred, DeliveryError, DeliveryRefused


class Sender(Protocol):
    def send(self, key: int, mail_from: str, recipients: list[str], data: bytes) -> None: ...

    def close(self) -> None: ...


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
            raise DeliveryDeferred(f"maildir {self.path}: {exc}") from exc

    def close(self) -> None:
        pass


class SmtpSender:
    def __init__(self, settings: SmtpOut, password: str | None = None):
        self.settings = settings
        self.password = password
        self._smtp: smtplib.SMTP | None = None

    def send(self, key: int, mail_from: str, recipients: list[str], data: bytes) -> None:
        cfg = self.settings
        try:
            try:
                reused = self._smtp is not None
                refused = self._connection().sendmail(mail_from, recipients, data)
            except smtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                self._drop()            # the relay closed a connection we kept: once more, afresh
                refused = self._connection().sendmail(mail_from, recipients, data)
        except smtplib.SMTPRecipientsRefused as exc:
            self._drop()
            raise _classify(min((code for code, _ in exc.recipients.values()), default=None),
                            f"all recipients refused: {exc.recipients}") from exc
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise _classify(exc.smtp_code, f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise DeliveryDeferred(f"{cfg.host}:{cfg.port}: {exc}") from exc
        if refused:
            # Some recipients were refused: report, but the accepted ones have it.
            raise DeliveryRefused(f"refused for some recipients: {refused}")

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        cfg = self.settings
        smtp_class = smtplib.SMTP_SSL if cfg.ssl else smtplib.SMTP
        smtp = smtp_class(cfg.host, cfg.port, timeout=cfg.timeout.total_seconds())
        try:
            if cfg.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username and self.password is not None:
                smtp.login(cfg.username, self.password)
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


def _classify(code: int | None, text: str) -> DeliveryError:
    if code is not None and 500 <= code < 600:
        return DeliveryRefused(text)
    return DeliveryDeferred(text)


def make_sender(settings: SmtpOut, base_dir: Path) -> Sender:
    if settings.maildir:
        path = Path(settings.maildir)
        return MaildirSender(path if path.is_absolute() else base_dir / path)
    password = os.environ.get(settings.password_env) if settings.password_env else None
    return SmtpSender(settings, password)
