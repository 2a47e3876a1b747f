"""The predicates a rule's `when` can use: classify's closed vocabulary.

Sits between rules.py (which reads the YAML and builds these objects once)
and engine.py (which asks each Condition for its hits). A Matcher is one
item of a `when` list, compiled; a Condition is one `when` key of one rule;
PREDICATES is the closed registry of named predicates — subject, body,
subject_or_body, from, to, header — that turn a message into Hits.

Everything is compiled with RE2, keywords included. RE2 runs in time linear
in the text, whatever the pattern, so a rule cannot run away on a hostile
message. Python's `re` would be safe for escaped keywords too, but it has no
Unicode property classes: with RE2's \\p{L}, \\p{M}, \\p{N} and script classes
the word boundary is right in every script (a combining accent continues a
word; Han, kana and Thai are written without spaces, so they end a Latin word
and need no boundary of their own). RE2's own \\b is ASCII-only, which is why
the boundary is spelled out below.
"""

from __future__ import annotations

import unicodedata
import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

import re2

from mailtriage.model import Hit, ParsedMail

# Scripts written without spaces between words: a keyword edge in them needs
# no boundary, and a neighbour in them does not continue a Latin word.
_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
_WORD = r"\p{L}\p{M}\p{N}_"
_BREAK = rf"(?:[^{_WORD}]|[{_UNSPACED}])"
_SPACE = r"[\s\p{Z}]+"   # any run of whitespace, incl. newlines and NBSP

_is_word = re2.compile(rf"[{_WORD}]").fullmatch
_is_unspaced = re2.compile(rf"[{_UNSPACED}]").fullmatch


def _options(case_sensitive: bool) -> re2.Options:
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False   # a bad regex is reported as FILE:LINE, not on stderr
    return options


def _compile(pattern: str, case_sensitive: bool = False) -> Any:
    try:
        return re2.compile(pattern.encode("utf-8"), _options(case_sensitive))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None


def normalize(text: str) -> str:
    """NFC, so that a composed 'é' in a rule matches a decomposed one in mail."""
    return unicodedata.normalize("NFC", text)


def utf8(text: str) -> bytes:
    """What the patterns search. Patterns and texts are UTF-8 bytes because the
    re2 module re-encodes a str text on every search: encoding each text once
    per message makes classifying about four times faster. surrogatepass: a
    str decoded with surrogateescape must not crash classification."""
    return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Matcher:
    """One item of a `when` list, compiled once: finds its text in a UTF-8 text."""

    written: str         # the item as written in the rules file
    kind: str            # keyword, regex, address or domain
    regex: Any = dataclasses.field(repr=False, compare=False)   # compiled re2 pattern, made from the rest
    group: int = 0       # which group is "the text that matched"
    case_sensitive: bool = False

    def find(self, text: bytes) -> str | None:
        match = self.regex.search(text)
        return None if match is None else match.group(self.group).decode("utf-8", "replace")


def keyword(text: str) -> Matcher:
    """A literal word or phrase, case-insensitive, on word boundaries."""
    words = normalize(text).split()
    if not words:
        raise ValueError("a keyword cannot be empty")
    body = _SPACE.join(re2.escape(word) for word in words)
    # RE2 has no lookaround, so the boundary character is consumed outside
    # the group and group 1 is the text that matched.
    left = f"(?:^|{_BREAK})" if _needs_boundary(words[0][0]) else ""
    right = f"(?:{_BREAK}|$)" if _needs_boundary(words[-1][-1]) else ""
    return Matcher(text, "keyword", _compile(f"{left}({body}){right}"), group=1)


def _needs_boundary(edge: str) -> bool:
    """Only a word character of a spaced script must not run on into a word."""
    return bool(_is_word(edge)) and not _is_unspaced(edge)


def regex(pattern: str, case_sensitive: bool = False) -> Matcher:
    """A regular expression in RE2 syntax; ValueError if RE2 cannot compile it."""
    if not pattern:
        raise ValueError("a regex cannot be empty")
    try:
        return Matcher(pattern, "regex", _compile(pattern, case_sensitive), case_sensitive=case_sensitive)
    except ValueError as exc:
        raise ValueError(f"regex '{pattern}' is not valid RE2: {exc}") from None


def address(text: str) -> Matcher:
    """`anna@customer.example` (that address) or `@customer.example` (that domain)."""
    value = text.strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or not domain or any(char.isspace() for char in value):
        raise ValueError(f"{text!r} is not an address or @domain")
    if not local:
        return Matcher(text, "domain", _compile(f"^.*{re2.escape(value)}$"))
    return Matcher(text, "address", _compile(f"^{re2.escape(value)}$"))


@dataclass(frozen=True)
class MailView:
    """The parts of one message the predicates read, prepared once per message.

    Subject, body and header values are NFC-normalised and cut to `limit`
    characters, so a 30 MB body costs no more than `limit` characters of it.
    """

    mail: ParsedMail
    subject: bytes
    body: bytes
    limit: int

    @classmethod
    def of(cls, mail: ParsedMail, limit: int) -> "MailView":
        return cls(mail, cls.prepare(mail.subject, limit), cls.prepare(mail.body_text, limit), limit)

    @staticmethod
    def prepare(text: str, limit: int) -> bytes:
        return utf8(normalize(text[:limit]))

    def headers(self, name: str) -> tuple[bytes, ...]:
        return tuple(self.prepare(value, self.limit) for value in self.mail.header_all(name))

    def sender(self) -> tuple[bytes, ...]:
        return (utf8(self.mail.from_addr),)

    def recipients(self) -> tuple[bytes, ...]:
        return tuple(utf8(address) for address in self.mail.recipients)


@dataclass(frozen=True)
class Condition:
    """One `when` key of one rule: a predicate name and the items it looks for."""

    rule: str
    key: str                         # a name in PREDICATES
    matchers: tuple[Matcher, ...]
    header: str | None = None        # for key == "header"

    @property
    def field(self) -> str:
        return f"header:{self.header}" if self.key == "header" else self.key

    def hits(self, view: MailView) -> tuple[Hit, ...]:
        return PREDICATES[self.key](view, self)


Predicate = Callable[[MailView, Condition], tuple[Hit, ...]]


def _scan(condition: Condition, texts: Iterable[bytes]) -> tuple[Hit, ...]:
    """One Hit per item found, with the first text it was found in."""
    texts = tuple(texts)
    hits = []
    for matcher in condition.matchers:
        for text in texts:
            found = matcher.find(text)
            if found is not None:
                hits.append(Hit(condition.rule, condition.field, matcher.written, found))
                break
    return tuple(hits)


def subject(view: MailView, condition: Condition) -> tuple[Hit, ...]:
    return _scan(condition, [view.subject])


def body(view: MailView, condition: Condition) -> tuple[Hit, ...]:
    return _scan(condition, [view.body])


def subject_or_body(view: MailView, condition: Condition) -> tuple[Hit, ...]:
    return _scan(condition, [view.subject, view.body])


def sender(view: MailView, condition: Condition) -> tuple[Hit, ...]:
    return _scan(condition, view.sender())


def recipients(view: MailView, condition: Condition) -> tuple[Hit, ...]:
    """`to` means anyone the message was addressed to: To and Cc."""
    return _scan(condition, view.recipients())


def header(view: MailView, condition: Condition) -> tuple[Hit, ...]:
    return _scan(condition, view.headers(condition.header or ""))


PREDICATES: Mapping[str, Predicate] = MappingProxyType({
    "subject": subject,
    "body": body,
    "subject_or_body": subject_or_body,
    "from": sender,
    "to": recipients,
    "header": header,
})

# Which items each predicate accepts as plain strings (regex items go anywhere).
ADDRESS_KEYS = frozenset({"from", "to"})
