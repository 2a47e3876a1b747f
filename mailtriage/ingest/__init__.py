"""Sources: everything that yields raw message bytes (files, stdin, Maildir,
mbox, IMAP, SMTP/LMTP). A source acknowledges a message only after
pipeline.accept() has committed it."""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32


def message_id_of(raw: bytes) -> str:
    """The Message-ID for log lines (headers only, never raises)."""
    try:
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        value = BytesHeaderParser(policy=compat32).parsebytes(head).get("Message-ID")
    except Exception:  # noqa: BLE001 - a log label must not break ingest
        return "<?>"
    text = " ".join(str(value or "").split())
    return text[:200] if text else "(no Message-ID)"
