"""Attachments out of MIME, for parse.py: which parts are files, and their safe names.

    sources → store raw → **parse** (this module picks the files) → guards → …

A part is a file when its disposition says attachment, when it has a name,
when it is an enclosed message, or when it is an inline image an HTML body
shows by its Content-ID (`cid:`). The name is customer input: the last path
component only, without controls, bidi overrides or `..`.
"""

from __future__ import annotations

import hashlib
import re
from email.message import Message

from mailtriage.mail.mime import decode_words, single_line, subparts, unsurrogate
from mailtriage.model import Attachment

_MIME_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_FILENAME_UNSAFE = re.compile("[\x00-\x1f\x7f\x85\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_MSG_ID = re.compile(r"<[^<>\s]+>")
_MAX_ID = 250
_MAX_FILENAME = 200
_UNNAMED = "unnamed"
_ENCLOSED_MESSAGE = ("message/rfc822", "message/global")


def is_attachment(part: Message) -> bool:
    """Disposition attachment, a filename, or an enclosed message (whose text
    is not our body, but which an agent should know is there)."""
    if part.get_content_type() in _ENCLOSED_MESSAGE:
        return True
    # Cheap substring tests first: Message.get_param() costs tens of µs.
    disposition = str(part.get("content-disposition", "")).lower()
    if disposition.split(";", 1)[0].strip() == "attachment":
        return True
    if "content-id" in part and part.get_content_maintype() not in ("text", "multipart"):
        return True                    # an inline image an HTML body shows (cid:)
    if "name" not in disposition and "name" not in str(part.get("content-type", "")).lower():
        return False
    return part.get_filename() is not None


def attachment(part: Message, defects: list[str]) -> Attachment:
    content_type = _mime_type(part)
    filename = _filename(part, defects)
    if filename == _UNNAMED and content_type in _ENCLOSED_MESSAGE:
        filename = "message.eml"
    data = _payload_bytes(part)
    return Attachment(filename=filename, content_type=content_type, size=len(data),
                      sha256=hashlib.sha256(data).hexdigest(), payload=data, content_id=_content_id(part))


def _content_id(part: Message) -> str:
    """`<id@host>` as a cid: link names it (`cid:id@host`); "" when absent or unusable."""
    value = part.get("content-id")
    if value is None:
        return ""
    compact = "".join(single_line(str(value)).split())
    if not compact.startswith("<"):
        compact = f"<{compact}>"
    return compact if _MSG_ID.fullmatch(compact) and len(compact) <= _MAX_ID and "=?" not in compact else ""


def _mime_type(part: Message) -> str:
    found = _MIME_TYPE.match(part.get_content_type())
    return found.group() if found else "application/octet-stream"


def _payload_bytes(part: Message) -> bytes:
    """The decoded content (base64 and quoted-printable undone)."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    try:  # message/rfc822: the attached message, generated again as bytes
        return b"".join(inner.as_bytes() for inner in subparts(part))
    except Exception:  # best effort: the content is not worth losing the message for
        return b""


def _filename(part: Message, defects: list[str]) -> str:
    """RFC 2231 (stdlib) then RFC 2047 decoded; the last path component only."""
    try:
        name = part.get_filename() or ""
    except (ValueError, LookupError, UnicodeError):  # RFC 2231 charset "\x00" and the like
        defects.append("bad-filename")
        name = ""
    if not name.isascii():
        name = unsurrogate(name, defects)
    name = decode_words(name, defects)
    return _safe_filename(name)


def _safe_filename(name: str) -> str:
    """Something safe to show and to store: no path, no controls, no '..'."""
    name = _FILENAME_UNSAFE.sub("", name).replace("\\", "/").rsplit("/", 1)[-1]
    while ".." in name:
        name = name.replace("..", ".")
    name = " ".join(name.split()).strip(". ")
    return name[:_MAX_FILENAME] or _UNNAMED
