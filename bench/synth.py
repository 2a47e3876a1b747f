"""A realistic synthetic mailbox: threads with replies, several languages and
charsets, HTML-only mail, attachments, shuffled delivery order. Deterministic
for a given seed, so runs are comparable."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

SUBJECTS = [
    ("en", "VPN is down for the whole sales team", "Nobody can work since this morning."),
    ("en", "Cannot log in to the portal", "I am locked out after the password change."),
    ("en", "Question about my invoice", "How do I download last month's invoice?"),
    ("en", "Printer very slow on floor 3", "Several users see very slow printing."),
    ("nl", "Storing: e-mail ligt plat", "Niemand kan werken, de mailserver ligt plat."),
    ("nl", "Vraag over factuur", "Ik heb een vraag over de factuur van maart."),
    ("ru", "Не работает почта", "Сервер не работает, несколько пользователей не могут войти."),
    ("ru", "Вопрос по счёту", "У меня вопрос по счёту за февраль."),
]
CHARSETS = {"en": ["us-ascii", "utf-8"], "nl": ["utf-8", "iso-8859-1"], "ru": ["utf-8", "koi8-r"]}


def _message(rng: random.Random, index: int, thread: int, position: int, parent: list[str],
             when: datetime) -> tuple[str, bytes]:
    lang, subject, body = SUBJECTS[thread % len(SUBJECTS)]
    customer = f"customer{thread % 997}@client{thread % 41}.example"
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"Customer {thread % 997} <{customer}>"
    msg["To"] = "support@example.test"
    msg["Subject"] = ("Re: " if position else "") + subject
    msg["Date"] = format_datetime(when)
    message_id = f"<t{thread}.m{position}.{index}@client{thread % 41}.example>"
    msg["Message-ID"] = message_id
    if parent:
        msg["In-Reply-To"] = parent[-1]
        msg["References"] = " ".join(parent)
    text = body + ("\n\nMore details follow.\n" * rng.randint(1, 20))
    if position:
        text = "Any news?\n\n> " + body
    charset = rng.choice(CHARSETS[lang])
    if rng.random() < 0.15:
        msg.set_content(f"<html><body><p>{text}</p></body></html>", subtype="html", charset="utf-8")
    else:
        msg.set_content(text, charset=charset if charset != "us-ascii" or lang == "en" else "utf-8")
    if rng.random() < 0.1:
        msg.add_attachment(rng.randbytes(rng.randint(2_000, 40_000)), maintype="application",
                           subtype="pdf", filename=f"report-{index}.pdf")
    return message_id, msg.as_bytes()


def generate(folder: Path, count: int, seed: int = 42) -> Path:
    """Write `count` messages into a Maildir at `folder` (files in shuffled order).
    Each message is written as it is made: the generator's memory stays flat."""
    rng = random.Random(seed)
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    names = [f"{i:07d}.synthetic:2," for i in range(count)]
    random.Random(seed + 1).shuffle(names)          # delivery order is not conversation order
    written = 0
    thread = 0
    while written < count:
        parent: list[str] = []
        for position in range(min(rng.randint(1, 5), count - written)):
            when = start + timedelta(minutes=written)
            message_id, raw = _message(rng, written, thread, position, parent, when)
            parent.append(message_id)
            (folder / "cur" / names[written]).write_bytes(raw)
            written += 1
        thread += 1
    return folder
