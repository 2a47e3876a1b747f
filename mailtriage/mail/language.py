"""The customer's language: Content-Language, else the new text, else the default (pure).

    parse ─► **language.of_first_message** ─► ticket.language ─► templates/<language>/
    reply ─► **language.after_reply**: the ticket's language, or the one the customer switched to

A ticket's language is a primary language tag (`en`, `nl`, `ru`): the
`Content-Language` header of its first customer message when there is one
(RFC 3282: the sender says so), else what py3langid reads in that message's
new text (the subject and what the customer wrote, without quoted history,
signature or `>` lines; mail.quotes). A text that is too short (fewer than
MIN_LETTERS letters) or that the detector is unsure of (top probability under
MIN_CONFIDENCE) is not guessed at: the ticket gets `default_language`.

Why py3langid, restricted to CANDIDATES: measured in bench/language.py on
short support mails in five languages (README, "Language"). Restricting the
model to the languages a support desk meets removes the exotic neighbours
(Afrikaans for Dutch, Latin for short English) that make short texts wrong.

A reply in another language does not change the ticket's language at once:
a colleague answering for the customer, a forwarded note or a one-line
English "thanks" on a Russian ticket would flip the customer's mail. Two
customer replies in a row in the same other language (each by
Content-Language, else a confident detection) switch it: the customer has
switched for good. An unsure reply neither counts nor breaks the run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING

from mailtriage.mail import quotes

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

# The languages detection chooses among (py3langid's labels, ISO 639-1).
CANDIDATES = ("en", "nl", "de", "fr", "es", "it", "pt", "ru", "uk", "pl", "cs", "sv", "da", "fi", "tr")
NAMES = {"en": "English", "nl": "Dutch", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
         "pt": "Portuguese", "ru": "Russian", "uk": "Ukrainian", "pl": "Polish", "cs": "Czech", "sv": "Swedish",
         "da": "Danish", "fi": "Finnish", "tr": "Turkish", "no": "Norwegian", "ja": "Japanese", "zh": "Chinese"}
MIN_LETTERS = 20              # "Thanks!", "ok", "+1", "VPN" are no language
MIN_CONFIDENCE = 0.90         # py3langid's normalised probability of its top language
SWITCH_AFTER = 2              # consecutive customer replies in another language that switch the ticket
MAX_TEXT = 2_000              # characters read: the first paragraphs tell the language
_TAG = re.compile(r"[A-Za-z]{2,3}")

Detect = Callable[[str], tuple[str, float]]


@dataclass(frozen=True)
class Decision:
    """A message's language and how it was found, for the ticket's events."""

    language: str | None          # None: no Content-Language, and the text did not tell
    via: str                      # content-language | detected | too short | unsure
    confidence: float = 0.0

    def explain(self) -> str:
        if self.via == "detected":
            return f"{self.via} in the text (p={self.confidence:.2f})"
        if self.via == "content-language":
            return "Content-Language header"
        return f"text {self.via} (fewer than {MIN_LETTERS} letters or p < {MIN_CONFIDENCE})"


def name(tag: str) -> str:
    """`Dutch (nl)`: how agents' notices name a language."""
    return f"{NAMES[tag]} ({tag})" if tag in NAMES else tag


def primary_tag(header: str | None) -> str | None:
    """The primary language of a Content-Language value (`nl-NL, en` → `nl`), or None."""
    if not header:
        return None
    first = header.split(",")[0].strip().split("-")[0].split("_")[0]
    return first.lower() if _TAG.fullmatch(first) else None


def new_text(subject: str, body: str) -> str:
    """What the customer wrote in this message: the subject and the body's own
    text, without quoted history, signature, `>` lines, links and addresses."""
    own = quotes.split_reply(body).text
    lines = [line for line in own.splitlines()[:200] if not line.lstrip().startswith(">")]
    text = f"{subject}\n\n" + "\n".join(lines)
    # Word by word, not a regex over the text: `\S+://` tried at each of 90,000
    # letters of one long word is quadratic (test_hostile's runaway body).
    return "\n".join(" ".join(word for word in line.split() if "://" not in word and "@" not in word)
                     for line in text[:MAX_TEXT].splitlines()).strip()


def letters(text: str) -> int:
    return sum(c.isalpha() for c in text)


def decide_detected(text: str, detect: Detect) -> str | None:
    """The language `detect` finds in `text`, or None when the text is too short
    or the detector unsure (the caller then uses the default: no guess)."""
    return detect_text(text, detect).language


def detect_text(text: str, detect: Detect) -> Decision:
    if letters(text) < MIN_LETTERS:
        return Decision(None, "too short")
    language, confidence = detect(text)
    if confidence < MIN_CONFIDENCE or not _TAG.fullmatch(language):
        return Decision(None, "unsure", confidence)
    return Decision(language, "detected", confidence)


def of_message(content_language: str | None, text: str, detect: Detect) -> Decision:
    """Content-Language first, else the text."""
    stated = primary_tag(content_language)
    if stated is not None:
        return Decision(stated, "content-language", 1.0)
    return detect_text(text, detect)


@dataclass(frozen=True)
class AfterReply:
    """The ticket's language after a customer's reply, and the run of replies toward another."""

    language: str
    pending: str | None           # the other language the latest counted replies were in
    switched: bool = False


def after_reply(current: str, pending: str | None, reply: str | None) -> AfterReply:
    """A customer's reply in `reply` (None: unsure) on a ticket in `current`,
    whose previous counted reply was in `pending` (another language) or not.
    SWITCH_AFTER (two) replies in a row in the same other language switch."""
    if reply is None:
        return AfterReply(current, pending)             # neither counts nor breaks the run
    if reply == current:
        return AfterReply(current, None)
    if SWITCH_AFTER <= 1 or pending == reply:
        return AfterReply(reply, None, switched=True)
    return AfterReply(current, reply)


class Detector:
    """py3langid's model, restricted to CANDIDATES (and the default language),
    loaded on the first mail it reads: about 1 s and 100 MB of memory
    (README, "The customer's language"), paid once per process."""

    def __init__(self, languages: tuple[str, ...] = CANDIDATES):
        self.languages = tuple(dict.fromkeys(languages))

    @cached_property
    def _identifier(self) -> LanguageIdentifier:
        return _identifier(self.languages)

    def rank_top(self, text: str) -> tuple[str, float]:
        """The most likely language of `text` and its probability."""
        language, confidence = self._identifier.classify(text)
        return str(language), float(confidence)

    def of_message(self, content_language: str | None, subject: str, body: str) -> Decision:
        if primary_tag(content_language) is not None:        # stated: no need to split the body
            return of_message(content_language, "", self.rank_top)
        return of_message(content_language, new_text(subject, body), self.rank_top)


@cache
def _identifier(languages: tuple[str, ...]) -> LanguageIdentifier:
    """The model, once per process and set of languages: a read-only table that
    a reload (SIGHUP builds a new Config) has no reason to read again."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([lang for lang in languages if lang in identifier.nb_classes])
    return identifier
