"""Senders: hand a composed message to the outgoing SMTP relay or drop it in a Maildir.

A sender returns the reply each recipient got (RFC 5321 answers per
recipient: one may get 250, another 451, a third 550) and leaves what that
means to the outbox. It raises only when the relay itself is the trouble:

    RelayUnavailable   it cannot be reached, went silent, closed the service
                       (421), or would not let us in (any AUTH failure, 530)
    DeliveryDeferred   the connection broke in the middle of this mail

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

from mailtriage.config.load import smtp_password
from mailtriage.config.values import SmtpOut
from mailtriage.errors import DeliveryDeferred, MailtriageError, RelayUnavailable
from mailtriage.notify.deliveries import Reply
from mailtriage.oauth2 import TokenSource, smtp_tokens

# Replies about the relay rather than the mail, whenever they come: the
# service is closing (421), or it wants a login it did not get (530).
RELAY_REPLIES = {421: "refused service", 530: "authentication required"}


DELIVERED = Reply(250, "delivered")


class Sender(Protocol):
    def send(self, key: int, mail_from: str, recipients: list[str], data: bytes) -> dict[str, Reply]: ...

    def close(self) -> None: ...


class MaildirSender:
    """Delivers into a Maildir; the file name is derived from the outbox row,
    so delivering the same row twice leaves one file."""

    def __init__(self, path: Path):
        self.path = path
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)

    def send(self, key: int, mail_from: str, recipients: list[str], data: bytes) -> dict[str, Reply]:
        name = f"mt-outbox-{key}.{hashlib.sha256(data).hexdigest()[:16]}"
        if (self.path / "new" / name).exists() or any((self.path / "cur").glob(name + "*")):
            return dict.fromkeys(recipients, DELIVERED)
        tmp = self.path / "tmp" / name
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path / "new" / name)
        except OSError as exc:
            raise DeliveryDeferred(f"maildir {self.path}: {exc}") from exc
        return dict.fromkeys(recipients, DELIVERED)

    def close(self) -> None:
        pass


class SmtpSender:
    def __init__(self, settings: SmtpOut, password: str | None = None, tokens: TokenSource | None = None):
        self.settings = settings
        self.password = password
        self.tokens = tokens
        self._smtp: smtplib.SMTP | None = None

    def send(self, key: int, mail_from: str, recipients: list[str], data: bytes) -> dict[str, Reply]:
        if self._smtp is not None:
            try:
                return self._transaction(self._smtp, mail_from, recipients, data)
            except _Stale:
                self._drop()            # the relay closed a connection we kept: once more, afresh
        try:
            return self._transaction(self._open(), mail_from, recipients, data)
        except _Stale as exc:
            raise DeliveryDeferred(f"connection lost: {exc.__cause__}") from exc

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()

    def _open(self) -> smtplib.SMTP:
        """Connect, greet, STARTTLS and log in; any failure here is the relay's."""
        cfg = self.settings
        stage = "connect"
        smtp: smtplib.SMTP | None = None
        try:
            smtp = (smtplib.SMTP_SSL if cfg.ssl else smtplib.SMTP)(
                cfg.host, cfg.port, timeout=cfg.timeout.total_seconds())
            smtp.ehlo_or_helo_if_needed()
            if cfg.starttls:
                stage = "tls"
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo_or_helo_if_needed()
            if cfg.username and self.tokens is not None:
                stage = "login"
                xoauth2_login(smtp, cfg.username, self.tokens)
            elif cfg.username and self.password is not None:
                stage = "login"
                smtp.login(cfg.username, self.password)
        except (smtplib.SMTPException, OSError) as exc:
            if smtp is not None:
                smtp.close()
            raise _unavailable(exc, stage) from exc
        self._smtp = smtp
        return smtp

    def _transaction(self, smtp: smtplib.SMTP, mail_from: str, recipients: list[str],
                     data: bytes) -> dict[str, Reply]:
        """MAIL, RCPT for each recipient, DATA for those accepted: each recipient's reply."""
        stage = "mail"
        try:
            options = [f"SIZE={len(data)}"] if smtp.has_extn("size") else []
            sender = self._checked(_reply(*smtp.mail(mail_from, options)))
            if not sender.accepted:
                self._reset(smtp)
                return dict.fromkeys(recipients, sender)
            stage = "rcpt"
            replies = {rcpt: self._checked(_reply(*smtp.rcpt(rcpt))) for rcpt in recipients}
            accepted = [rcpt for rcpt, reply in replies.items() if reply.accepted]
            if not accepted:
                self._reset(smtp)
                return replies
            final = self._checked(_data(smtp, data))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            if _timed_out(exc):                   # silent mid-mail: the next one would wait as long
                raise RelayUnavailable(f"no answer within {self.settings.timeout.total_seconds():g} s "
                                       f"(at {stage.upper()})", "no answer", charged=stage != "mail") from exc
            if stage == "mail":
                raise _Stale() from exc
            raise DeliveryDeferred(f"connection lost at {stage.upper()}: {exc}") from exc
        if not final.accepted:
            self._reset(smtp)
        return {**replies, **dict.fromkeys(accepted, final)}

    def _checked(self, reply: Reply) -> Reply:
        if reply.code in RELAY_REPLIES:
            self._drop()
            raise RelayUnavailable(str(reply), RELAY_REPLIES[reply.code])
        return reply

    def _reset(self, smtp: smtplib.SMTP) -> None:
        """RSET after a refused transaction, so the connection can carry the next mail."""
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


def xoauth2_login(smtp: smtplib.SMTP, user: str, tokens: TokenSource) -> None:
    """AUTH XOAUTH2 (after EHLO: smtplib's auth() sends none, and takes a 503
    for success). A 535 for a token the relay finds expired gets one refresh
    and one more try; a second refusal, or no token to be had, is the relay
    being unavailable: the mail waits and no try is counted."""
    def auth(token: str) -> None:
        # After a failed initial response a server may send a 334 challenge: it is
        # answered empty, and the 535 follows.
        smtp.auth("XOAUTH2", lambda challenge=None: "" if challenge is not None
                  else f"user={user}\x01auth=Bearer {token}\x01\x01")
    try:
        token = tokens.access_token()
        try:
            auth(token)
        except smtplib.SMTPAuthenticationError:
            auth(tokens.refresh(rejected=token))
    except MailtriageError as exc:              # the token endpoint, not the relay, said no
        smtp.close()
        raise RelayUnavailable(f"AUTH XOAUTH2 as {user}: {exc}", "no OAuth2 token") from exc


class _Stale(Exception):
    """The connection broke before the relay answered MAIL FROM."""


def _reply(code: int, text: bytes | str) -> Reply:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return Reply(code, text.replace("\n", " "))


def _data(smtp: smtplib.SMTP, data: bytes) -> Reply:
    try:
        return _reply(*smtp.data(data))
    except smtplib.SMTPDataError as exc:       # DATA itself refused (no 354)
        return _reply(exc.smtp_code, exc.smtp_error)


def _timed_out(exc: BaseException) -> bool:
    """smtplib reports a read that timed out as SMTPServerDisconnected, with the timeout as its context."""
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)


def _unavailable(exc: BaseException, stage: str) -> RelayUnavailable:
    """Name what went wrong while getting to the relay: the outage log says it
    once, and again when it changes (e.g. connection refused → authentication failed)."""
    if _timed_out(exc):
        cause = "no answer"
    elif stage == "login":
        cause = "authentication failed"
    elif stage == "tls":
        cause = "TLS failed"
    elif isinstance(exc, ConnectionRefusedError):
        cause = "connection refused"
    elif isinstance(exc, smtplib.SMTPResponseException):
        cause = "refused service"
    else:
        cause = "connection failed"
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = str(_reply(exc.smtp_code, exc.smtp_error))
    else:
        detail = str(exc) or exc.__class__.__name__
    return RelayUnavailable(f"{cause}: {detail}", cause)


def make_sender(settings: SmtpOut, base_dir: Path) -> Sender:
    if settings.maildir:
        path = Path(settings.maildir)
        return MaildirSender(path if path.is_absolute() else base_dir / path)
    return SmtpSender(settings, smtp_password(settings), smtp_tokens(settings, base_dir))  # ConfigError when missing
