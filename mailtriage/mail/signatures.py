"""Where the signature starts in what the author wrote (pure).

`quotes.split_reply()` cuts the quoted history first; `signature_start()`
finds, in the lines that are left, the first line of the signature. What is
cut there never reaches a customer in a relayed answer (the agents' notices
keep it, `Reply.with_signature`), so a rule cuts only what is plainly not the
message:

* a delimiter and all below it: `-- `, `--`, `__`, Outlook's long underscore line;
* a mobile tagline ("Sent from my iPhone" in the languages of
  mail-parser-reply, "via mobile", Russian "Отправлено с iPhone") and what
  follows; a person's name alone above the tagline goes with it;
* a short `-Name` line near the end ("-Abhishek Kona"), unless it is in a
  `- item` list;
* a contact block, a brute-force search after talon's idea with rules of our
  own: the last paragraph when it starts with a person's name (two to four
  capitalised words) and its other lines are short title, company and
  contact lines, one at least an address, a phone number, a link or a
  messenger handle ("Gina Example\\ngina@example.com\\n(555) 346-9947"); or a
  row of dashes followed by at most 11 short lines, none of them a sentence
  and one at least with contact data.

A sign-off stays with the text, the customer is meant to read it:
"Thanks,\\nAlice" is kept whole, and of "Best regards,\\nAlice Example\\n+31 20
555 0100" only the lines below the name go. A last paragraph that is a
sentence, a list, or links with no name above them is the author's content.
Every pattern here runs on one line of at most MAX_BLOCK_LINE characters
(or is a plain alternation), so hostile input costs linear time.
"""

from __future__ import annotations

import re
from functools import lru_cache

from mailparser_reply.constants import MAIL_LANGUAGES

MAX_BLOCK_LINES = 11          # non-empty lines below a row of dashes (talon's SIGNATURE_MAX_LINES)
MAX_BLOCK_LINE = 60           # a longer line is text, not a signature (talon's TOO_LONG_SIGNATURE_LINE)
MAX_NAME_LINE = 40
_SIGNATURE_TAIL = 15          # a "-Name" line counts only this close to the end

QUOTED = re.compile(r"^\s*>")
_SIG_DELIMITER = re.compile(r"^(?:--|__|-- )\s*$")
_OUTLOOK_LINE = re.compile(r"^\s*_{32,}\s*$")
_DASH_NAME = re.compile(r"^-[^\W\d_][\w .'-]{0,38}$")          # "-Abhishek Kona", not "- a bullet"
_DASH_RULE = re.compile(r"^(?:-{3,}|_{3,})$")
# Taglines mail-parser-reply does not know: "via mobile", "Sent via my phone", "Отправлено с iPhone".
_TAGLINE = re.compile(r"^(?:(?:sent )?via (?:my )?(?:mobile|phone|cell ?phone|smartphone|tablet)(?: device)?"
                      r"|Отправлено (?:с|из) [\w .]{1,40})$", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")
_URL = re.compile(r"(?:\bhttps?://|\bwww\.)\S+", re.IGNORECASE)
_PHONE = re.compile(r"\+?\(?\d[\d ()./-]{5,24}\d")            # counted as a phone with 7 digits or more
_HANDLE = re.compile(r"^(?:skype|twitter|linkedin|telegram|whatsapp|signal|wechat|teams)\s?:\s?\S", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^(?:[-*•]\s|\d{1,3}[.)]\s)")
_SENTENCE_END = (".", "!", "?", ":", ";", ",")
# Sign-off lines (en, de, nl, fr, ru): the name below one stays with the text.
_SIGN_OFF = re.compile(
    r"^(?:thanks|thank you|many thanks|thx|regards|best|kind regards|warm regards|best wishes|cheers|sincerely"
    r"|yours|all the best|take care|br|grüße|gruß|grüsse|gruss|viele grüße|beste grüße|liebe grüße"
    r"|mit freundlichen grüßen|freundliche grüße|mfg|lg|danke|vielen dank|groeten|groet|met vriendelijke groet"
    r"|vriendelijke groet|hartelijke groet|bedankt|dank je|dank u|mvg|gr|cordialement|bien à vous|merci"
    r"|bonne journée|salutations|amicalement|с уважением|спасибо|всего доброго|всего хорошего|с наилучшими)"
    r"(?![\w])", re.IGNORECASE)
_ABBREVIATIONS = frozenset({"inc.", "ltd.", "co.", "corp.", "llc.", "jr.", "sr.", "gmbh.", "bv.", "nv."})
_NAME_PARTICLES = frozenset({"van", "de", "der", "den", "von", "du", "da", "di", "le", "la", "del", "dos", "ter",
                             "te", "zu", "bin", "ibn", "al", "el"})


def signature_start(lines: list[str], languages: tuple[str, ...]) -> int:
    """Index of the first signature line among the author's lines, or len(lines)."""
    sent_from = _sent_from_regex(languages)
    last_text = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line or QUOTED.match(raw):
            continue
        if raw.rstrip() in ("--", "-- ", "__") or _SIG_DELIMITER.match(raw) or _OUTLOOK_LINE.match(raw):
            return index
        if sent_from.match(line) or _TAGLINE.match(line):
            return _name_above(lines, index)
        if _DASH_NAME.match(line) and last_text - index < _SIGNATURE_TAIL and not _is_list(lines, index):
            return index
    return _contact_block(lines)


@lru_cache(maxsize=8)
def _sent_from_regex(languages: tuple[str, ...]) -> re.Pattern[str]:
    taglines = [MAIL_LANGUAGES[lang].get("sent_from", "") for lang in languages if lang in MAIL_LANGUAGES]
    alternatives = "|".join(t for t in taglines if t)
    # As mail-parser-reply: the tagline plus a few words or a link, nothing like a sentence.
    return re.compile(rf"^(?:{alternatives}) ?(?:[\w.<>:/ ]+|(?:\w+ ){{1,3}})$", re.IGNORECASE)


def _is_list(lines: list[str], index: int) -> bool:
    """`-item` lines in a row are a list, not a signature."""
    neighbours = [lines[i].strip() for i in (index - 1, index + 1) if 0 <= i < len(lines)]
    return any(n.startswith("-") and n != "--" for n in neighbours)


def _name_above(lines: list[str], index: int) -> int:
    """A tagline, with the name alone on the line above it when that starts a
    paragraph below the author's text ("Stavros Example\\nvia mobile")."""
    above = index - 1
    if above >= 1 and is_name(lines[above]) and not lines[above - 1].strip() \
            and _has_text(lines[:above - 1]) and not _after_sign_off(lines, above):
        return above
    return index


def _contact_block(lines: list[str]) -> int:
    """Where a contact block at the end starts (the module's docstring), or len(lines)."""
    end = max((i + 1 for i, line in enumerate(lines) if line.strip()), default=0)
    ruled = _ruled_block(lines, end)
    if ruled is not None:
        return ruled
    first = end
    while first > 0 and lines[first - 1].strip():
        first -= 1
    if first == 0 or end - first > MAX_BLOCK_LINES + 1 or not _has_text(lines[:first]):
        return len(lines)
    name = first
    if is_sign_off(lines[name]):
        name += 1
    if name >= end or not is_name(lines[name]):
        return len(lines)
    rest = [line.strip() for line in lines[name + 1:end]]
    if not rest or not all(_block_line(line) for line in rest) or not any(is_contact(line) for line in rest):
        return len(lines)
    return name + 1 if name > first or _after_sign_off(lines, name) else name


def _ruled_block(lines: list[str], end: int) -> int | None:
    """A row of dashes with at most MAX_BLOCK_LINES short lines below it, contact data among them."""
    below: list[str] = []
    cursor = end
    while cursor > 0:
        cursor -= 1
        line = lines[cursor].strip()
        if not line:
            continue
        if _DASH_RULE.match(line):
            if len(below) >= 2 and any(is_contact(b) for b in below) and _has_text(lines[:cursor]):
                return cursor
            return None
        if len(below) == MAX_BLOCK_LINES or QUOTED.match(lines[cursor]) or not _block_line(line):
            return None
        below.append(line)
    return None


def _block_line(line: str) -> bool:
    """A line that can be in a signature: short, not a sentence, not a list item."""
    if len(line) > MAX_BLOCK_LINE or _LIST_ITEM.match(line):
        return False
    return not line.endswith(_SENTENCE_END) or _abbreviated(line) or is_contact(line)


def _abbreviated(line: str) -> bool:
    """The line ends in an abbreviation such as "B.V.", "Ph.D." or "Inc.", not a full stop."""
    last = line.split()[-1]
    return last.endswith(".") and ("." in last[:-1] or last.lower() in _ABBREVIATIONS)


def _after_sign_off(lines: list[str], index: int) -> bool:
    """The nearest non-empty line above `index` is a sign-off ("Thanks,")."""
    above = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
    return is_sign_off(above)


def _has_text(lines: list[str]) -> bool:
    return any(line.strip() and not QUOTED.match(line) for line in lines)


def is_sign_off(line: str) -> bool:
    line = line.strip()
    return len(line) <= MAX_NAME_LINE and not line.endswith("?") and bool(_SIGN_OFF.match(line))


def is_name(line: str) -> bool:
    """Two to four capitalised words (particles such as "van" or "de" aside): a person's name."""
    line = line.strip()
    words = line.split()
    if len(line) > MAX_NAME_LINE or not 2 <= len(words) <= 5 or is_sign_off(line):
        return False
    named = [word for word in words if word.lower() not in _NAME_PARTICLES]
    return 2 <= len(named) <= 4 and all(word[0].isupper() and all(c.isalpha() or c in ".-'’" for c in word)
                                        for word in named)


def is_contact(line: str) -> bool:
    """A short line that is mostly an e-mail address, a link, a phone number or a messenger handle."""
    line = line.strip()
    if len(line) > MAX_BLOCK_LINE:
        return False
    if _HANDLE.match(line):
        return True
    rest, found = line, False
    for pattern in (_EMAIL, _URL):
        rest, count = pattern.subn(" ", rest)
        found = found or count > 0
    for match in _PHONE.finditer(rest):
        if sum(c.isdigit() for c in match.group()) >= 7:
            found = True
            rest = rest.replace(match.group(), " ")
    return found and len([w for w in rest.split() if any(c.isalpha() for c in w)]) <= 2
