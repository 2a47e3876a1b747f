"""A message's files on our outgoing mail (pure): which travel, which are only listed.

    customer's mail ─► notice to agents: every file listed (name, type, size);
                       attached in the mail's order while the total stays within
                       `agent_notice_attachments`; inline images with the HTML
                       they belong to (multipart/related, same Content-ID)
    agent's answer  ─► relayed to the customers with every file, byte for byte

File names and types come from parse.py, which has made them safe to show;
compose.py writes them with email.message's API. The customer's HTML goes
to agents only through nh3 (Ammonia): no script, no style, no remote image
(a tracking pixel would tell the sender when an agent read it), only `cid:`
links to the images that travel with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import nh3

from mailtriage.model import Attachment
from mailtriage.notify.compose import Enclosure

_URL_SCHEMES = {"cid", "http", "https", "mailto"}
_REMOTE_SCHEMES = ("http:", "https:", "//")


@dataclass(frozen=True)
class Chosen:
    """What a notice carries of a message's files."""

    listed: tuple[dict, ...] = ()               # for the template: name, type, size, attached
    enclosures: tuple[Enclosure, ...] = ()
    html: str | None = None                     # the sanitized HTML its inline images belong to
    limit: str = ""                             # the limit, as people read it
    left_out: int = 0                           # files listed but not attached


def enclosure(attachment: Attachment) -> Enclosure:
    return Enclosure(attachment.filename, attachment.content_type, attachment.payload,
                     attachment.content_id or None)


def relayed(files: tuple[Attachment, ...]) -> tuple[Enclosure, ...]:
    """An agent's files, all of them, for the customer."""
    return tuple(enclosure(a) for a in files)


def for_notice(files: tuple[Attachment, ...], html: str, limit: int) -> Chosen:
    """Each file listed; attached in order while the total stays within `limit` bytes."""
    if not files:
        return Chosen()
    total, listed, chosen = 0, [], []
    for attachment in files:
        attach = total + attachment.size <= limit and len(attachment.payload) == attachment.size
        total += attachment.size if attach else 0
        listed.append({"name": attachment.filename, "type": attachment.content_type,
                       "size": human_size(attachment.size), "attached": attach,
                       "inline": bool(attachment.content_id)})
        if attach:
            chosen.append(enclosure(attachment))
    linked = html and any(e.content_id for e in chosen)
    return Chosen(tuple(listed), tuple(chosen), clean_html(html) if linked else None, human_size(limit),
                  sum(not item["attached"] for item in listed))


def clean_html(html: str) -> str:
    """The customer's HTML, safe to show: Ammonia's defaults, no remote images."""
    return nh3.clean(html, url_schemes=_URL_SCHEMES, attribute_filter=_no_remote_src)


def _no_remote_src(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "src" and value.strip().lower().startswith(_REMOTE_SCHEMES):
        return None
    return value


def human_size(size: int) -> str:
    """`980 bytes`, `12 KB`, `3.4 MB` (1024-based, as the config's sizes are)."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 ** 2:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 ** 2:.1f} MB"
