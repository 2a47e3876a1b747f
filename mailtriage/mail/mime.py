"""Text out of MIME: RFC 2047 encoded words and charsets, for parse.py.

    sources → store raw → **parse** (this module decodes its text) → guards → …

Pure and total: every function here returns readable text for any input.
A declared charset is tried first; an unknown or lying one falls back to
UTF-8, then to charset-normalizer's best guess, then to UTF-8 with U+FFFD,
and the fallback is noted in the caller's `defects`. Header values leave
`single_line()` without CR, LF, NUL or any other control character, which is
what keeps customer text from ever becoming a second header downstream.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

from email.message import Message

import charset_normalizer

ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?]*)\?=")
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")
# Names mailers use that Python does not know, or knows as a too-strict subset.
# (Latin-1 is read as its superset cp1252 below, as browsers do: Windows mailers
# label cp1252 text, curly quotes and all, as iso-8859-1.)
_CHARSET_ALIASES = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6",
    "ks_c_5601-1987": "cp949", "x-mac-roman": "mac_roman", "macintosh": "mac_roman",
}
# Codecs Python accepts that no mail charset means: they turn text into code
# points of the sender's choosing (lone surrogates, escapes).
_REFUSED_CODECS = frozenset({"unicode-escape", "raw-unicode-escape"})


def subparts(part: Message) -> list[Message]:
    """The parts a multipart or message/* part holds (none for a leaf: its payload is not touched)."""
    payload = part.get_payload() if part.is_multipart() else None
    return [inner for inner in payload if isinstance(inner, Message)] if isinstance(payload, list) else []


def unsurrogate(value: str, defects: list[str]) -> str:
    """Raw 8-bit header bytes (kept by the parser as surrogates) → text."""
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        defects.append("bad-surrogate")
        return value.encode("utf-8", "replace").decode("utf-8")
    return decode_bytes(data, "utf-8", defects)


def single_line(value: str) -> str:
    """No CR, LF, NUL or other control survives; runs of whitespace become one space."""
    if value.isprintable() and "  " not in value and value == value.strip():
        return value  # the common case; isprintable() is False for every control
    return " ".join(_CONTROL.sub(" ", value).split())


def decode_words(value: str, defects: list[str]) -> str:
    """RFC 2047: decode encoded words; adjacent words of one charset are joined
    as bytes first (senders split multi-byte characters across words)."""
    if "=?" not in value:
        return value
    tokens: list[tuple[str, bytes | str]] = []  # ("", text) or (charset, bytes)
    pos = 0
    for match in ENCODED_WORD.finditer(value):
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            defects.append("bad-encoded-word")
            continue  # stays in the surrounding plain text
        tokens += [("", value[pos:match.start()]), (match.group(1).lower(), data)]
        pos = match.end()
    tokens.append(("", value[pos:]))
    out: list[str] = []
    run_charset, run = "", bytearray()  # bytearray: += must not copy (quadratic)
    for index, (charset, item) in enumerate(tokens):
        if isinstance(item, bytes) and charset == run_charset:
            run += item
            continue
        if run_charset and isinstance(item, str) and not item.strip() and index + 1 < len(tokens):
            continue  # whitespace between two encoded words is not text
        if run_charset:
            out.append(decode_bytes(bytes(run), run_charset, defects))
        run_charset, run = ("", bytearray()) if isinstance(item, str) else (charset, bytearray(item))
        if isinstance(item, str):
            out.append(item)
    return "".join(out)


def _word_bytes(encoding: str, text: str) -> bytes | None:
    if encoding in "qQ":
        return binascii.a2b_qp(text.encode("utf-8", "replace"), header=True)
    for candidate in (text, re.sub(r"[^A-Za-z0-9+/]", "", text)):
        try:
            return base64.b64decode(candidate + "=" * (-len(candidate) % 4))
        except (binascii.Error, ValueError):
            continue
    return None


def decode_bytes(data: bytes, charset: str | None, defects: list[str]) -> str:
    """Decode by the declared charset; unknown or lying charsets fall back."""
    try:
        text = data.decode(_codec_name(charset))
        text.encode("utf-8")  # no lone surrogates may leave this module
        return text
    except (LookupError, UnicodeError, ValueError, TypeError):
        label = re.sub(r"[^a-z0-9._-]", "", (charset or "none").lower())[:40]
        defects.append(f"charset-fallback:{label}")
        return _detect(data)


def _codec_name(charset: str | None) -> str:
    name = (charset or "us-ascii").strip().strip("\"'").lower()
    name = name.removeprefix("charset=").strip("\"'")
    codec = codecs.lookup(_CHARSET_ALIASES.get(name, name)).name
    if codec in _REFUSED_CODECS:
        raise LookupError(name)
    return "cp1252" if codec == "iso8859-1" else codec


def _detect(data: bytes) -> str:
    """utf-8, then charset-normalizer's best guess, then utf-8 with U+FFFD."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        best = charset_normalizer.from_bytes(data).best()
        if best is not None:
            text = str(best)
            text.encode("utf-8")
            return text
    except (LookupError, UnicodeError, ValueError, TypeError):
        pass
    return data.decode("utf-8", "replace")
