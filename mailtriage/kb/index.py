"""The knowledge base's index and its ranking: articles in, suggestions out
(pure: built from values, no file, no clock; kb.load reads the folder).

    Article ─► heading (title + keywords) and body, stemmed in its language ─► two BM25 indexes (bm25s)
    customer text ─► stems in every language the index holds, pooled ─► 2 × heading score + body score
        ─► relevant? ─► the customer's language first, then by score ─► at most `limit`

Relevant means both: the mail names the article (it holds every word of the
article's title or of one of its keywords, as stems, stop words aside), and
the score reaches MIN_SCORE. BM25 alone lets one common word of a title
("new", "office") carry an unrelated mail over any fixed score; keywords are
where the author says what an article answers. `mailtriage kb search` shows
each article's score and what named it.

One index over all languages keeps scores comparable, so an English article
still helps a Dutch customer when no Dutch one does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import bm25s
import numpy as np

from mailtriage.kb.article import Article
from mailtriage.kb.text import Stemmers, words

MIN_SCORE = 3.0
HEADING_WEIGHT = 2.0              # a word of the title or keywords says what the article is about
MAX_QUERY_CHARS = 5_000           # a mail is judged by its start (about 800 words): bounded work per mail


@dataclass(frozen=True)
class Suggestion:
    title: str
    url: str | None
    score: float
    language: str
    path: str
    named_by: str | None = None   # the title or keyword the mail holds; None: not named, never suggested

    def as_dict(self) -> dict[str, object]:
        return {"title": self.title, "url": self.url, "score": round(self.score, 3), "language": self.language,
                "path": self.path, "named_by": self.named_by}


class KnowledgeBase:
    """The index of a set of articles. Read-only once built: the daemon's threads share it."""

    def __init__(self, articles: Sequence[Article], min_score: float = MIN_SCORE):
        self.articles = tuple(articles)
        self.min_score = min_score
        self.languages = tuple(sorted({a.language for a in self.articles}))
        self._stemmers = Stemmers()
        headings = [_heading(a, self._stemmers) for a in self.articles]
        self._names = tuple(tuple((label, frozenset(stems)) for label, stems in h if stems) for h in headings)
        self._fields: tuple[tuple[bm25s.BM25, float], ...] = ()
        if self.articles:
            self._fields = ((_index([[t for _, stems in h for t in stems] for h in headings]), HEADING_WEIGHT),
                            (_index([self._stemmers.tokens(a.body, a.language) for a in self.articles]), 1.0))

    def __len__(self) -> int:
        return len(self.articles)

    def rank(self, text: str, limit: int = 10) -> list[Suggestion]:
        """The best-scoring articles for `text`, relevant or not (for `kb search`)."""
        words = self._words(text)
        scores = self._scores(words)
        best = np.argsort(-scores, kind="stable")[:limit]
        return [self._suggestion(int(i), float(scores[i]), words) for i in best if scores[i] > 0]

    def search(self, text: str, language: str | None = None, limit: int = 3) -> list[Suggestion]:
        """At most `limit` relevant articles, those in `language` first, each group by score."""
        words = self._words(text)
        scores = self._scores(words)
        candidates = np.flatnonzero(scores >= self.min_score)
        theirs: list[Suggestion] = []      # in the customer's language
        others: list[Suggestion] = []
        for index in candidates[np.argsort(-scores[candidates], kind="stable")]:
            article = self.articles[index]
            group = theirs if article.language == language else others
            if len(group) < limit and self._named_by(int(index), words) is not None:
                group.append(self._suggestion(int(index), float(scores[index]), words))
            if len(theirs) >= limit or (language is None and len(others) >= limit):
                break                      # many articles clear the bar in a large knowledge base
        return (theirs + others)[:max(limit, 0)]

    def is_suggested(self, suggestion: Suggestion) -> bool:
        return suggestion.named_by is not None and suggestion.score >= self.min_score

    def _words(self, text: str) -> frozenset[str]:
        """The mail's stems in every language of the index (each distinct word stemmed once)."""
        distinct = list(dict.fromkeys(words(text[:MAX_QUERY_CHARS])))
        return frozenset(token for language in self.languages for token in self._stemmers.stems(distinct, language))

    def _scores(self, words: frozenset[str]) -> np.ndarray:
        """Each article's score: the heading's BM25, weighted, plus the body's."""
        total = np.zeros(len(self.articles))
        for bm25, weight in self._fields:
            ids = bm25.get_tokens_ids(sorted(words))
            if ids:
                total += weight * np.asarray(bm25.get_scores_from_ids(ids), dtype=np.float64)
        return total

    def _named_by(self, index: int, words: frozenset[str]) -> str | None:
        return next((name for name, stems in self._names[index] if stems <= words), None)

    def _suggestion(self, index: int, score: float, words: frozenset[str]) -> Suggestion:
        article = self.articles[index]
        return Suggestion(article.title, article.url, score, article.language, article.path,
                          self._named_by(index, words))


def _heading(article: Article, stemmers: Stemmers) -> list[tuple[str, list[str]]]:
    """The title and each keyword, stemmed: the heading field's words, and what
    a mail must hold (all the stems of one of them) to name the article."""
    phrases = ((f"title {article.title!r}", article.title), *((f"keyword {k!r}", k) for k in article.keywords))
    return [(label, stemmers.tokens(text, article.language)) for label, text in phrases]


def _index(documents: list[list[str]]) -> bm25s.BM25:
    bm25 = bm25s.BM25()
    bm25.index(documents, show_progress=False)
    return bm25


EMPTY = KnowledgeBase(())
