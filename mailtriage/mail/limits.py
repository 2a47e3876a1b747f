"""Limits: is a message too big or too deep to process? (pure, cheap)

    store raw ─► **limits** ─► parse ─► dedupe ─► guards ─► thread ─► …

A message over a limit is kept raw and quarantined with the reason
(`limit:size`, `limit:headers`, `limit:parts`, `limit:depth`,
`limit:attachment-size`), never half-processed. `check_raw()` runs before
the full parse and costs a few passes of C code over the bytes: the size
first, then the header count, then a scan over the lines that start with
`--` only, which follows the MIME boundaries (a stack of the open ones, as
the stdlib's feed parser keeps) and counts parts and nesting without
building a message tree. `check_parsed()` looks at what only the parse
knows: the decoded size of each attachment.

The scan follows what the stdlib parser recurses into (`multipart/*` with
a boundary, `message/*` enclosures, the digest default) and agrees with the
parser's counts within a few parts on the corpus' oddities (a boundary
reused inside its own part, empty parts, the header blocks of a DSN). That
is close enough for limits set thirty times above real mail; whatever the
scan misses is still parsed by a parser that never raises (parse.py falls
back to the headers on a RecursionError).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from mailtriage.model import ParsedMail

_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)",
                           re.MULTILINE | re.IGNORECASE)
_BOUNDARY = re.compile(r"""boundary\s*=\s*(?:"([^"]*)"|([^\s;"]+))""", re.IGNORECASE)
_BLANK = re.compile(rb"\n\r?\n")
# A line the stdlib parser does not take for a header field (email.feedparser.headerRE).
_NOT_A_HEADER = re.compile(rb"^(?![\x21-\x39\x3b-\x7e]*:|[ \t]|From )", re.MULTILINE)
_WINDOW = 65_536          # a part's header block is looked for in this many bytes


class Limits(Protocol):
    """settings.Limits (the `limits:` block of mailtriage.yaml)."""

    max_message_size: int
    max_headers: int
    max_parts: int
    max_depth: int
    max_attachment_size: int


@dataclass(frozen=True)
class Breach:
    """One limit a message is over."""

    name: str          # size, headers, parts, depth, attachment-size
    detail: str        # for `quarantine list`: the figure and the limit

    @property
    def reason(self) -> str:
        return f"limit:{self.name}"


def check_raw(raw: bytes, limits: Limits) -> Breach | None:
    """The first limit the raw message is over, or None: size, headers, then structure."""
    if len(raw) > limits.max_message_size:
        return Breach("size", f"{len(raw)} bytes, more than limits.max_message_size ({limits.max_message_size})")
    if raw.count(b"\r") != raw.count(b"\r\n"):   # bare CR line ends: scan a normalized copy
        raw = re.sub(rb"\r\n?", b"\n", raw)
    head, body_start = _top_headers(raw)
    headers = _header_count(head)
    if headers > limits.max_headers:
        return Breach("headers", f"{headers} header fields, more than limits.max_headers ({limits.max_headers})")
    return _Structure(raw, limits).scan(head, body_start)


def check_parsed(mail: ParsedMail, limits: Limits) -> Breach | None:
    """The attachment-size limit, on the decoded sizes only the parse knows."""
    for attachment in mail.attachments:
        if attachment.size > limits.max_attachment_size:
            return Breach("attachment-size", f"{attachment.filename}: {attachment.size} bytes, more than "
                          f"limits.max_attachment_size ({limits.max_attachment_size})")
    return None


def _candidates(raw: bytes, start: int) -> Iterator[tuple[bytes, int]]:
    """(text after the `--`, index of the line's LF) of each line from `start`
    on that starts with `--`; bytes.find is memchr-fast where a regex is not."""
    pos = max(start - 1, 0)               # `start` follows an LF: a first-line boundary counts
    while (found := raw.find(b"\n--", pos)) >= 0:
        line_end = raw.find(b"\n", found + 3)
        line_end = len(raw) if line_end < 0 else line_end
        yield raw[found + 3:line_end].rstrip(b" \t\r"), line_end
        pos = line_end


def _top_headers(raw: bytes) -> tuple[bytes, int]:
    """The message's header block and where its body begins: up to the blank
    line, or to the first line that is no header field (as the parser reads it)."""
    head, body_start = _block(raw, 0, len(raw))
    stray = _NOT_A_HEADER.search(head)
    if stray is not None and stray.start() < len(head):
        return head[:stray.start()], stray.start()
    return head, body_start


def _header_count(head: bytes) -> int:
    """Header fields: lines that are not continuation lines (folded values)."""
    if not head.strip():
        return 0
    lines = head.count(b"\n") + (not head.endswith(b"\n"))
    return lines - head.count(b"\n ") - head.count(b"\n\t")


def _block(raw: bytes, start: int, window: int = _WINDOW) -> tuple[bytes, int]:
    """The header block at `start` and where the body after it begins."""
    if raw.startswith(b"\n", start):
        return b"", start + 1
    if raw.startswith(b"\r\n", start):
        return b"", start + 2
    found = _BLANK.search(raw, start, min(len(raw), start + window))
    if found is None:
        end = min(len(raw), start + window)
        return raw[start:end], end
    return raw[start:found.start() + 1], found.end()


def _content_type(head: bytes, default: str) -> tuple[str, str | None]:
    """(type/subtype, boundary) of a header block."""
    found = _CONTENT_TYPE.search(head)
    if found is None:
        return default, None
    value = re.sub(r"\r?\n[ \t]", " ", found.group(1).decode("latin-1"))
    ctype = value.split(";", 1)[0].strip().lower() or default
    boundary = _BOUNDARY.search(value)
    return ctype, (boundary.group(1) if boundary and boundary.group(1) is not None
                   else boundary.group(2) if boundary else None)


class _Structure:
    """The boundary scan: a stack of open multiparts, as the feed parser keeps."""

    def __init__(self, raw: bytes, limits: Limits):
        self.raw, self.limits = raw, limits
        self.stack: list[tuple[bytes, int, bool]] = []   # (boundary, level, is a digest)
        self.parts = 1

    def scan(self, head: bytes, body_start: int) -> Breach | None:
        breach = self._enter(head, body_start, level=1, default="text/plain")
        if breach or not self.stack:
            return breach
        for token, line_end in _candidates(self.raw, body_start):
            if token.endswith(b"--") and self._open(token[:-2]):
                self._close(token[:-2])
            elif self._open(token):
                self._close(token, keep=True)
                breach = self._part(line_end)
                if breach:
                    return breach
            if not self.stack:
                return None
        return None

    def _open(self, token: bytes) -> bool:
        return any(boundary == token for boundary, _, _ in self.stack)

    def _close(self, token: bytes, keep: bool = False) -> None:
        """Pop up to the multipart of `token` (and it too, unless `keep`)."""
        while self.stack and self.stack[-1][0] != token:
            self.stack.pop()
        if self.stack and not keep:
            self.stack.pop()

    def _part(self, line_end: int) -> Breach | None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            return Breach("parts", f"more than limits.max_parts ({self.limits.max_parts}) MIME parts")
        _, parent_level, digest = self.stack[-1]
        head, body = _block(self.raw, line_end + 1)
        return self._enter(head, body, parent_level + 1, "message/rfc822" if digest else "text/plain")

    def _enter(self, head: bytes, body: int, level: int, default: str) -> Breach | None:
        """A part's headers: open its multipart, or follow its enclosed messages."""
        while True:
            if level > self.limits.max_depth:
                return Breach("depth", f"MIME parts nested more than limits.max_depth ({self.limits.max_depth}) deep")
            ctype, boundary = _content_type(head, default)
            if ctype.startswith("multipart/") and boundary:
                self.stack.append((boundary.encode("latin-1"), level, ctype == "multipart/digest"))
                return None
            if not ctype.startswith("message/") or ctype == "message/delivery-status" or body >= len(self.raw):
                return None
            self.parts += 1          # an enclosed message: its own headers follow
            if self.parts > self.limits.max_parts:
                return Breach("parts", f"more than limits.max_parts ({self.limits.max_parts}) MIME parts")
            head, body = _block(self.raw, body)
            level, default = level + 1, "text/plain"
