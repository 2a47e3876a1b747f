"""Parse: raw bytes → ParsedMail, the first pure step after the raw store.

    sources → store raw → **parse** → guards → thread → classify → tickets

`parse(raw)` takes the bytes exactly as received and returns a frozen
`ParsedMail`. It does no I/O, reads no clock and never raises: broken MIME,
lying charsets and hostile structure become entries in `defects`.

Why the stdlib `compat32` parser, and not `policy.default` or mail-parser:
measured over the shared corpus (292 messages), a bare compat32 parse takes
about 0.8 ms a message, `policy.default` about 3 ms (4.5 ms once headers are
read, and its header objects raise on a real message with CR/LF inside an
encoded address), mail-parser about 2 ms (it runs the stdlib parser and then
more). compat32 leaves header decoding to us, which is what we want: every
value goes through one small decoder (`mimetext.py`) that tolerates
unknown charsets and strips CR/LF/NUL. So mail-parser is not used. The
whole `parse()` of a small plain message takes about 0.3 ms; the stdlib
parse is a third of that, and `email.utils.getaddresses` is avoided for the
common one-address header.

Size and structure limits are checked before this step (`limits.py`); an
attachment comes back with its decoded bytes and their sha256, so the
pipeline can store it content-addressed.
"""

from __future__ import annotations

import email.utils
import hashlib
import html as html_entities
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

import inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

from mailtriage.mail.attachments import attachment, is_attachment
from mailtriage.mail.flowed import unflow
from mailtriage.mail.mime import ENCODED_WORD, decode_bytes, decode_words, single_line, subparts, unsurrogate
from mailtriage.model import Attachment, ParsedMail

_FOLD = re.compile(r"\r?\n(?=[ \t])")
_HTML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BODY_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # keeps \t and \n; drops ESC, NUL
_TAG = re.compile(r"<[^>]*>")
_MSG_ID = re.compile(r"<[^<>\s]+>")
_ADDR_SPEC = re.compile(r"[^\s<>()\[\],;:\"@\\]+@[^\s<>()\[\],;:\"@\\]+")
# One address, bare or as `Name <addr>` / `"Name" <addr>`, nothing exotic.
_SIMPLE_ADDRESS = re.compile(
    r'\s*(?:(?:"([^"\\]*)"|([^"<>,;:()\[\]\\@]*?))\s*<\s*(' + _ADDR_SPEC.pattern + r')\s*>'
    r'|(' + _ADDR_SPEC.pattern + r'))\s*'
)

_MAX_ID = 250                 # longer ids are unusable as database keys
_MAX_ADDRESS_FIELD = 16_384   # getaddresses costs ~3 µs/char; beyond this, a regex scan
_ADDRESS_HEADERS = ("from", "to", "cc", "reply-to")
_MASK = "mtencodedword"
_MASKED = re.compile(_MASK + r"(\d+)x")
# inscriptis' default profile ("relaxed") indents each <div> by two spaces, so
# the nested divs of a phone's or Gmail's HTML indent an answer by four or
# more, and it pads <span>s with spaces ("< a@example.com >" breaks an
# attribution line). The "strict" profile is a browser's defaults: divs are
# not indented, lists are. Over the corpus's 97 HTML parts: 37 had indented
# lines, 8 do now (lists, tables, centred layouts). Read-only while parsing.
_HTML_CONFIG = ParserConfig(css=CSS_PROFILES["strict"])


def parse(raw: bytes) -> ParsedMail:
    """Parse one message. Never raises; problems are listed in `defects`."""
    try:
        return _parse(raw)
    except MemoryError:
        raise
    except Exception as exc:  # last resort: the contract is "never raises"
        defects = (f"parse-error:{type(exc).__name__}",)
        return _empty(raw, defects)


def _parse(raw: bytes) -> ParsedMail:
    defects: list[str] = []
    msg = _tree(raw, defects)
    raw_headers = _raw_headers(msg, defects)
    by_name: dict[str, list[str]] = {}
    for name, value in raw_headers:
        by_name.setdefault(name.lower(), []).append(value)
    first = {name: values[0] for name, values in by_name.items()}
    headers = tuple((name, single_line(decode_words(value, defects))) for name, value in raw_headers)
    subject = next((value for name, value in headers if name.lower() == "subject"), "")
    addresses = {name: _addresses(by_name.get(name, []), defects) for name in _ADDRESS_HEADERS}
    from_name, from_addr = addresses["from"][0] if addresses["from"] else ("", "")
    message_id, synthesized = _message_id(first.get("message-id", ""), raw, defects)
    body_text, attachments, html = _content(msg, defects)
    _collect_stdlib_defects(msg, defects)
    return ParsedMail(
        message_id=message_id,
        message_id_synthesized=synthesized,
        subject=subject,
        from_addr=from_addr,
        from_name=from_name,
        to=tuple(addr for _, addr in addresses["to"]),
        cc=tuple(addr for _, addr in addresses["cc"]),
        reply_to=tuple(addr for _, addr in addresses["reply-to"]),
        date=_date(first.get("date"), defects),
        in_reply_to=_ids(by_name.get("in-reply-to", [])),
        references=_ids(by_name.get("references", [])),
        body_text=body_text,
        attachments=attachments,
        html=html,
        headers=headers,
        defects=tuple(dict.fromkeys(defects)),
    )


def _empty(raw: bytes, defects: tuple[str, ...]) -> ParsedMail:
    return ParsedMail(
        message_id=_synthetic_id(raw), message_id_synthesized=True, subject="",
        from_addr="", from_name="", to=(), cc=(), reply_to=(), date=None,
        in_reply_to=(), references=(), body_text="", defects=defects,
    )


def _tree(raw: bytes, defects: list[str]) -> Message:
    """The stdlib parse; its multipart recursion is bounded by Python's stack."""
    try:
        return BytesParser(policy=compat32).parsebytes(raw)
    except RecursionError:
        defects.append("too-deep")
        return BytesParser(policy=compat32).parsebytes(raw, headersonly=True)


def _raw_headers(msg: Message, defects: list[str]) -> list[tuple[str, str]]:
    """Top-level headers, unfolded, 8-bit bytes decoded, not yet RFC 2047-decoded."""
    result = []
    for name, value in msg.raw_items():
        value = str(value)
        if "\n" in value:
            value = _FOLD.sub("", value)
        if not value.isascii():
            value = unsurrogate(value, defects)
        result.append((single_line(name), value))
    return result


def _addresses(values: list[str], defects: list[str]) -> list[tuple[str, str]]:
    """(decoded display name, lower-cased bare address) pairs; garbage is skipped."""
    field, words = _mask_encoded_words(", ".join(single_line(value) for value in values))
    if not field:
        return []
    simple = _SIMPLE_ADDRESS.fullmatch(field) if len(field) < 1000 else None
    if simple:  # the common case, without the stdlib's slow general parser
        name = decode_words(_unmask(simple.group(1) or simple.group(2) or "", words), defects)
        addr = _unmask(simple.group(3) or simple.group(4), words).lower()
        return [(single_line(name), addr)] if _usable_address(addr) else []
    pairs: list[tuple[str, str]] = []
    if len(field) <= _MAX_ADDRESS_FIELD:
        try:
            pairs = email.utils.getaddresses([field])
        except (RecursionError, ValueError, IndexError):
            defects.append("bad-address-header")
    else:
        defects.append("long-address-header")
    if not any(_ADDR_SPEC.fullmatch(addr.strip().strip("<>")) for _, addr in pairs):
        # `a@x.example b@x.example` (no commas) gives "@x.example": take what looks like addresses
        pairs = [("", found) for found in _ADDR_SPEC.findall(field)]
    result = []
    for name, addr in pairs:
        addr = _unmask(addr, words).strip().strip("<>").lower()
        if _usable_address(addr):
            result.append((single_line(decode_words(_unmask(name, words), defects)), addr))
    return result


def _usable_address(addr: str) -> bool:
    """A local part and a domain, no space, no quote, nothing of an encoded
    word (RFC 2047 section 5: never in an addr-spec)."""
    return bool(_ADDR_SPEC.fullmatch(addr)) and "=?" not in addr


def _mask_encoded_words(field: str) -> tuple[str, list[str]]:
    """Encoded words are display-name text only (RFC 2047 section 5): hidden
    behind plain atoms while the address parser runs, a `:` or `@` inside one
    (`=?utf-8?q?Anna=0D=0ABcc:_x@evil?= <anna@…>`) cannot become syntax."""
    if "=?" not in field:
        return field, []
    words: list[str] = []

    def hide(match: re.Match[str]) -> str:
        words.append(match.group())
        return f"{_MASK}{len(words) - 1}x"

    return ENCODED_WORD.sub(hide, field), words


def _unmask(text: str, words: list[str]) -> str:
    if not words or _MASK not in text:
        return text
    return _MASKED.sub(lambda m: words[int(m.group(1))] if int(m.group(1)) < len(words) else m.group(), text)


def _message_id(value: str, raw: bytes, defects: list[str]) -> tuple[str, bool]:
    compact = "".join(single_line(value).split())
    found = re.search(r"<[^<>]+>", compact)
    if found and len(found.group()) <= _MAX_ID:
        return found.group(), False
    if compact and "@" in compact and "<" not in compact and ">" not in compact and len(compact) < _MAX_ID:
        defects.append("message-id-without-brackets")
        return f"<{compact}>", False
    defects.append("bad-message-id" if compact else "missing-message-id")
    return _synthetic_id(raw), True


def _synthetic_id(raw: bytes) -> str:
    return f"<{hashlib.sha256(raw).hexdigest()[:32]}@mailtriage.invalid>"


def _ids(values: list[str]) -> tuple[str, ...]:
    found = _MSG_ID.findall(single_line(" ".join(values)))
    return tuple(dict.fromkeys(mid for mid in found if len(mid) <= _MAX_ID))


def _date(value: str | None, defects: list[str]) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        when = email.utils.parsedate_to_datetime(single_line(value))
    except (TypeError, ValueError, OverflowError, IndexError):
        defects.append("bad-date")
        return None
    if when.tzinfo is None:  # "-0000" or no zone at all: read as UTC
        when = when.replace(tzinfo=timezone.utc)
    return when


def _leaves(msg: Message) -> Iterator[Message]:
    """Non-multipart parts in document order, iteratively (no recursion).

    A message/rfc822 part is a leaf (a forwarded message is an attachment,
    its text is not our body) unless it is the whole message."""
    stack = [msg]
    while stack:
        part = stack.pop()
        # is_multipart() only looks; get_payload() on a leaf would decode it.
        if part.is_multipart() and (part is msg or part.get_content_maintype() == "multipart"):
            stack.extend(reversed(subparts(part)))
        else:
            yield part


def _content(msg: Message, defects: list[str]) -> tuple[str, tuple[Attachment, ...], str]:
    """The body (text/plain preferred, else HTML as text, else other text/*),
    the attachments, and the HTML source when inline images hang off it."""
    texts: dict[str, list[Message]] = {"plain": [], "html": [], "other": []}
    attachments: list[Attachment] = []
    for part in _leaves(msg):
        if is_attachment(part):
            attachments.append(attachment(part, defects))
            continue
        ctype = part.get_content_type()
        kind = {"text/plain": "plain", "text/html": "html"}.get(ctype, "other")
        if kind != "other" or ctype.startswith("text/"):
            texts[kind].append(part)  # decoded below, only if chosen
    if texts["plain"]:
        body = "\n".join(_plain_text(part, defects) for part in texts["plain"])
    elif texts["html"]:
        body = "\n".join(_html_to_text(_part_text(part, defects), defects) for part in texts["html"])
    else:
        body = "\n".join(_part_text(part, defects) for part in texts["other"])
    body = _BODY_UNSAFE.sub("", body.replace("\r\n", "\n").replace("\r", "\n"))
    linked = texts["html"] and any(a.content_id for a in attachments)
    html = _HTML_UNSAFE.sub("", _part_text(texts["html"][0], defects)) if linked else ""
    return body, tuple(attachments), html


def _part_text(part: Message, defects: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = None
    if "charset" in str(part.get("content-type", "")).lower():
        try:
            charset = part.get_content_charset()
        except (ValueError, LookupError, UnicodeError):  # a hostile RFC 2231 charset
            charset = "invalid"
    return decode_bytes(payload, charset, defects)


def _plain_text(part: Message, defects: list[str]) -> str:
    """A text/plain part; format=flowed (RFC 3676) unwrapped into paragraphs."""
    text = _part_text(part, defects)
    if "flowed" not in str(part.get("content-type", "")).lower():   # get_param() costs tens of µs
        return text
    if str(part.get_param("format", "")).lower() != "flowed":
        return text
    delsp = str(part.get_param("delsp", "")).lower() == "yes"
    return unflow(text.replace("\r\n", "\n").replace("\r", "\n"), delsp)


def _html_to_text(html: str, defects: list[str]) -> str:
    """inscriptis keeps layout (tables, lists); when lxml gives up (errors, or
    silently on huge or very deep documents), crude tag stripping instead."""
    cleaned = _HTML_UNSAFE.sub("", html)
    try:
        text = inscriptis.get_text(cleaned, _HTML_CONFIG)
    except Exception:  # lxml's errors are many; a crude text is better than none
        text = ""
    if text.strip():
        return text
    crude = " ".join(html_entities.unescape(_TAG.sub(" ", cleaned)).split())
    if crude:
        defects.append("html-conversion-failed")
    return crude


def _collect_stdlib_defects(msg: Message, defects: list[str]) -> None:
    stack = [msg]
    while stack:
        part = stack.pop()
        defects.extend(type(defect).__name__ for defect in getattr(part, "defects", ()))
        if part.is_multipart():
            stack.extend(subparts(part))
