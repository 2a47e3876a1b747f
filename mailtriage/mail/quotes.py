"""What the author wrote in this message: quoted history and signature cut off (pure).

Agents answer from their mail client, which quotes the whole notice below
their text (or above it, or in between). Before an agent's reply is relayed
to the customer, `split_reply()` keeps what the agent wrote and drops:

* quoted history: everything from the first quote header on — the
  multi-language "On … wrote:" and Outlook "From:/Sent:" block patterns of
  the mail-parser-reply library; for Russian, which it lacks, our own
  tables (Outlook's "От:/Отправлено:/Кому:/Тема:" block, "… написал(а):");
  one language-independent pattern of our own (a line with a date and an
  address ending in `:`); `>`-quoted lines and the attribution above them
  at the end;
* the signature (mail/signatures.py): a `-- ` line and what follows, mobile
  taglines, a short `-Name` line at the end, Outlook's underscore
  separator, and a contact block (a name with contact lines under it, or a
  row of dashes above short contact lines). Sign-offs ("Thanks,\nAlice")
  stay: the customer should get them.

Why our own line logic around the library rather than its
`EmailReplyParser.parse_reply()`: that one strips every line (bullet and
code indentation is lost), takes a `- item` list for a signature, counts
sign-offs such as "Thanks," as signature (the customer should get them),
and keeps only the text above the first quote, which loses inline and
bottom-posted answers. Measured on the talon and email-reply-parser
fixtures: see tests/corpus/test_reply_trimming.py.

Inline replies (answers between `>`-quoted parts) keep their quoted parts:
without them the answers make no sense.

A forward is not history: a customer who forwards a thread to support wants
the agent to read it. `split_keeping_forwards()` (for the agents' notices)
cuts what `split_reply()` cuts above a forward and keeps the forwarded
message whole: Gmail's and Thunderbird's "-------- Forwarded message
--------" lines and Apple Mail's "Begin forwarded message:" (in the ten
languages), and Outlook's From:/Sent: block when the subject says FW:
(Outlook writes the same block for a reply and a forward; only the subject
tells them apart). An agent's answer never keeps one: what it relays to a
customer stays what the agent wrote above the history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mailparser_reply.constants import MAIL_LANGUAGES
from mailparser_reply.parser import EmailMessage

from mailtriage.mail.signatures import QUOTED, signature_start

# mail-parser-reply's patterns for the first ten; Russian from the tables below.
LANGUAGES = ("en", "de", "fr", "nl", "es", "it", "sv", "da", "pl", "cs", "ru")
# Quote headers are looked for in this many characters from the top: the
# answer is there, the history below it. (The library's patterns use Python's
# backtracking `re`: about 2 ms per KB for ten languages, so this bounds the cost.)
HEADER_SCAN = 32_000
MAX_HEADER_LINE = 1_000
MAX_FORWARD_LINE = 5_000      # a forward line further down is inside what was forwarded

_QUOTED = QUOTED
_SEPARATOR = re.compile(r"^\s*(?:[-_=*~]\s*){5,}$|^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.I)
_OUTLOOK_LINE = re.compile(r"^\s*_{32,}\s*$")
# "Thu, 26 Jun 2014 14:00:51 +0400 от Alexander L <abc@example.com>:", '26.06.2014, 14:41, "A" <a@b>:'
_DATED_ATTRIBUTION = re.compile(
    r"^[^\n]{0,160}(?:\d{1,2}:\d{2}|\b(?:19|20)\d{2}\b)[^\n]{0,160}<[^<>\s@]+@[^<>\s@]+>[^\n]{0,80}:\s*$")
# Outlook's (and Windows Mail's) From:/Sent: block in the languages mail-parser-reply has no pattern for:
# the name of the From: field, then the names of the fields that follow it (one at least, within three lines).
_HEADER_FIELDS = {"ru": ("от", frozenset({"отправлено", "дата", "кому", "копия", "тема"}))}
_FIELD = re.compile(r"^[*\s\u200e\u200f]{0,4}([^\W\d_]{1,20})[*\s\u200e\u200f]{0,4}:")
# "26 июня 2014 г., в 15:05, Alexander L написал(а):": an attribution that ends so and holds a digit.
_WROTE = {"ru": ("написал:", "написала:", "написал(а):")}
# Gmail "---------- Forwarded message ---------", Thunderbird "-------- Forwarded Message --------",
# Yahoo "----- Forwarded Message -----", in the languages of LANGUAGES.
_FORWARD_RULE = re.compile(
    r"^\s*-{2,}\s*(?:Forwarded message|Weitergeleitete Nachricht|Message transf[ée]r[ée]|Doorgestuurd bericht"
    r"|Mensaje reenviado|Messaggio inoltrato|Vidarebefordrat meddelande|Videresendt (?:meddelelse|besked)"
    r"|Przekazana wiadomo[śs][ćc]|P[řr]eposlan[áa] zpr[áa]va)\s*-{2,}\s*$", re.I)
# Apple Mail: "Begin forwarded message:", per language.
_FORWARD_INTRO = re.compile(
    r"^\s*(?:Begin forwarded message|Anfang der weitergeleiteten (?:Nachricht|E-Mail)|D[ée]but du message r[ée]exp[ée]di[ée]"
    r"|Begin doorgestuurd bericht|Inicio del mensaje reenviado|Inizio messaggio inoltrato"
    r"|Vidarebefordrat (?:brev|mejl)|Start p[åa] videresendt (?:besked|meddelelse)"
    r"|Pocz[ąa]tek przekazywanej wiadomo[śs]ci|Za[čc][áa]tek p[řr]eposlan[ée] zpr[áa]vy)\s*:\s*$", re.I)
# A subject that forwards: "FW:", "Fwd:", German "WG:", French "TR:", Spanish "RV:", Dutch "Doorst:",
# Swedish "VB:", Danish/Norwegian "VS:", Polish "PD:", Czech "PŘ:"; only the first prefix counts
# ("RE: FW: …" is a reply, and what it quotes is history).
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|wg|tr|rv|doorst|vb|vs|pd|p[řr])\s*:", re.I)


@dataclass(frozen=True)
class Reply:
    text: str                 # the author's own words
    signature: str = ""
    with_signature: str = ""  # the author's words and signature: only the quoted history cut
    trimmed: bool = False     # something (quote or signature) was cut
    history_cut: bool = False  # quoted history was cut (with_signature is not the whole body)


@lru_cache(maxsize=4)
def split_reply(body: str, languages: tuple[str, ...] = LANGUAGES) -> Reply:
    # Cached: the ticket step splits a customer's body twice (its #commands, its
    # language), and the quote-header scan is a tenth of a message's import (bench/run.py).
    # A Reply is frozen, and a few bodies are all the cache holds.
    lines = _lines(body)
    return _split(lines, _header_lines(lines, languages), languages)


def split_keeping_forwards(body: str, subject: str = "", languages: tuple[str, ...] = LANGUAGES) -> Reply:
    """What a customer sent, for the agents: the text above a forward split as
    `split_reply()` splits it, then the forwarded message whole."""
    lines = _lines(body)
    headers = _header_lines(lines, languages)
    at = _forward_start(lines, headers, subject)
    if at is None:
        return _split(lines, headers, languages)
    note = _split(lines[:at], [(first, last) for first, last in headers if last < at], languages)
    forwarded = _join(lines[at:])
    return Reply(_join([note.text, "", forwarded]).strip("\n"), note.signature,
                 _join([note.with_signature, "", forwarded]).strip("\n"), note.trimmed, note.history_cut)


def _split(lines: list[str], headers: list[tuple[int, int]], languages: tuple[str, ...]) -> Reply:
    start, end = _own_region(lines, headers)
    own = lines[start:end]
    sig_at = signature_start(own, languages)
    text, signature = own[:sig_at], own[sig_at:]
    kept = _trim_trailing(text)
    signed = own if signature else kept
    trimmed = _words(lines) != _words(kept)
    return Reply(_join(kept), _join(signature), _join(signed), trimmed, _words(lines) != _words(signed))


def _lines(body: str) -> list[str]:
    return body.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _forward_start(lines: list[str], headers: list[tuple[int, int]], subject: str) -> int | None:
    """The line a forwarded message starts at, when it is in what the author
    wrote (not inside quoted history, where it was forwarded before)."""
    start, end = _own_region(lines, headers)
    marker = next((i for i in range(start, min(len(lines), MAX_FORWARD_LINE)) if not _QUOTED.match(lines[i])
                   and (_FORWARD_RULE.match(lines[i]) or _FORWARD_INTRO.match(lines[i]))), None)
    if marker is not None and (marker <= end or not _has_text(lines[end:marker])):
        return marker
    if end < len(lines) and _FORWARD_SUBJECT.match(subject) and not _QUOTED.match(lines[end]):
        above = end                   # Outlook: its underscore or "Original Message" line belongs to the block
        while above > start and (not lines[above - 1].strip() or _SEPARATOR.match(lines[above - 1])
                                 or _OUTLOOK_LINE.match(lines[above - 1])):
            above -= 1
        return above
    return None


def _words(lines: list[str]) -> int:
    return sum(1 for line in lines if line.strip())


def _join(lines: list[str]) -> str:
    return "\n".join(lines).strip("\n").rstrip()


# -- quote headers --------------------------------------------------------------

@lru_cache(maxsize=8)
def _header_regexes(languages: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    # One pattern per language: a single alternation of all of them is several times slower.
    return tuple(EmailMessage(text="", languages=[lang], include_english=False).HEADER_REGEX
                 for lang in languages if lang in MAIL_LANGUAGES)


def _header_lines(lines: list[str], languages: tuple[str, ...]) -> list[tuple[int, int]]:
    """(first, last) line of each quote header, in order."""
    scanned: list[str] = []
    size = 0
    for line in lines:
        if size > HEADER_SCAN:
            break
        scanned.append(line.strip()[:MAX_HEADER_LINE])     # a header line is short; `>`*10⁵ is not one
        size += len(scanned[-1]) + 1
    stripped = "\n".join(scanned)
    offsets = [0]
    for line in scanned:
        offsets.append(offsets[-1] + len(line) + 1)
    found: list[tuple[int, int]] = []
    for pattern in _header_regexes(languages):
        for match in pattern.finditer(stripped):
            text = match.group(0)
            begin = match.start() + (len(text) - len(text.lstrip()))
            if begin < match.end():
                found.append((_line_of(offsets, begin), _line_of(offsets, match.end() - 1)))
    for index, line in enumerate(scanned):
        if _DATED_ATTRIBUTION.match(line):
            found.append((index, index))
    found += _field_blocks(scanned, languages)
    return sorted(set(found))


def _field_blocks(scanned: list[str], languages: tuple[str, ...]) -> list[tuple[int, int]]:
    """(first, last) line of each From:/Sent: block and "… wrote:" line of the
    languages in _HEADER_FIELDS and _WROTE."""
    fields = [_HEADER_FIELDS[lang] for lang in languages if lang in _HEADER_FIELDS]
    endings = tuple(end for lang in languages for end in _WROTE.get(lang, ()))
    if not fields and not endings:
        return []
    names = [match.group(1).lower() if (match := _FIELD.match(line)) else "" for line in scanned]
    found = []
    covered = 0                          # a block's lines are not searched again (linear time)
    for index, line in enumerate(scanned):
        if endings and line.lower().endswith(endings) and any(c.isdigit() for c in line):
            found.append((index, index))
        for sender, others in fields:
            if index < covered or names[index] != sender \
                    or not any(name in others for name in names[index + 1:index + 4]):
                continue
            last = index
            while last + 1 < len(names) and names[last + 1] in others:
                last += 1
            found.append((index, last))
            covered = last + 1
    return found


def _line_of(offsets: list[int], position: int) -> int:
    low, high = 0, len(offsets) - 1
    while low < high - 1:
        middle = (low + high) // 2
        if offsets[middle] <= position:
            low = middle
        else:
            high = middle
    return low


def _own_region(lines: list[str], headers: list[tuple[int, int]]) -> tuple[int, int]:
    """The lines the author wrote: up to the first quote header that starts the
    history. A header followed by `>`-quoted lines and then more of the
    author's text is part of an inline reply and does not end it."""
    start = 0
    for first, last in headers:
        if first < start:
            continue
        if not _has_text(lines[start:first]):
            # The message starts with a quote. Bottom-posting (one answer below
            # it): skip the quote. Answers between quotes: keep it as context.
            quote_end = _quoted_block_end(lines, last + 1)
            if quote_end == last + 1:
                return start, first                   # only history, nothing of the author's
            if not _interleaved(lines, quote_end, headers):
                start = quote_end
            continue
        if not _is_inline(lines, last, headers):
            return start, first
    return start, len(lines)


def _is_inline(lines: list[str], last: int, headers: list[tuple[int, int]]) -> bool:
    quote_end = _quoted_block_end(lines, last + 1)
    if quote_end == last + 1:
        return False                                  # Outlook style: the original is not quoted
    next_header = next((first for first, _ in headers if first > last), len(lines))
    tail = lines[quote_end:next_header]
    return _has_text(_trim_trailing(tail[:signature_start(tail, LANGUAGES)]))


def _interleaved(lines: list[str], after: int, headers: list[tuple[int, int]]) -> bool:
    """More `>`-quoted lines follow the first answer, then more answers."""
    next_header = next((first for first, _ in headers if first >= after), len(lines))
    rest = _trim_trailing(lines[after:next_header])
    return any(_QUOTED.match(line) for line in rest)


def _quoted_block_end(lines: list[str], index: int) -> int:
    """Skip blank lines, then `>`-quoted ones; where the quote ends (or `index`)."""
    cursor = index
    while cursor < len(lines) and not lines[cursor].strip():
        cursor += 1
    if cursor >= len(lines) or not _QUOTED.match(lines[cursor]):
        return index
    while cursor < len(lines) and (_QUOTED.match(lines[cursor]) or not lines[cursor].strip()):
        cursor += 1
    return cursor


def _has_text(lines: list[str]) -> bool:
    return any(line.strip() and not _QUOTED.match(line) for line in lines)


# -- the tail ------------------------------------------------------------------------

def _trim_trailing(lines: list[str]) -> list[str]:
    """Drop, from the end: blank lines, separators, a `>`-quoted block and the
    attribution line(s) just above it."""
    end = len(lines)
    while True:
        before = end
        while end and (not lines[end - 1].strip() or _SEPARATOR.match(lines[end - 1])):
            end -= 1
        if end and _QUOTED.match(lines[end - 1]):
            while end and (_QUOTED.match(lines[end - 1]) or not lines[end - 1].strip()):
                end -= 1
            end = _drop_attribution(lines, end)
        if end == before:
            return lines[:end]


def _drop_attribution(lines: list[str], end: int) -> int:
    """`On <date>, <name> wrote:` in any language: a line ending in `:` right
    above a trailing quote, with up to two wrapped lines that hold a date or an address."""
    if not end or not lines[end - 1].rstrip().endswith(":"):
        return end
    cursor = end - 1
    while cursor > max(0, end - 3) and re.search(r"[@\d]", lines[cursor - 1]) and \
            not lines[cursor - 1].rstrip().endswith((".", "!", "?")):
        cursor -= 1
    if cursor == 0 and not re.search(r"[@\d]", lines[0]):
        return end                                   # a lone "Example:" line is the author's text
    return cursor
