"""Knowledge-base suggestions: `python bench/kb.py [--articles N] [--compare]`.

Writes N Markdown articles (default 10,000; en, nl and ru in turn, each a
variant of one of the 30 fixture articles in tests/fixtures/kb with its own
product name, keywords and extra text, so topics repeat as in a real help
centre), loads and indexes them as the daemon does at start, then times the
suggestion step of one acknowledgement (`KnowledgeBase.search` on a mail's
subject and body) over a set of real-looking mails: short and long, related
and unrelated, in the three languages. Prints a table, the figure beside its
target, and a JSON line.

`--compare` also measures the alternatives the README's dependency table
weighs: rank-bm25 against bm25s for ranking, snowballstemmer against
PyStemmer for stemming (`pip install rank-bm25 snowballstemmer` first).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from mailtriage.kb.load import read_folder  # noqa: E402
from mailtriage.kb.index import KnowledgeBase  # noqa: E402
from mailtriage.kb.text import STEMMERS, Stemmers, words  # noqa: E402
from report import print_report  # noqa: E402

TARGET_MS = 20.0
FIXTURES = ROOT / "tests" / "fixtures" / "kb"
MAILS = [
    ("nl", "VPN werkt niet sinds vanochtend", "Hallo, sinds vanochtend kan ik niet meer inloggen op de VPN."),
    ("en", "VPN is down for the whole sales team", "Nobody can work since this morning."),
    ("en", "Cannot log in to the portal", "I am locked out after the password change."),
    ("en", "Printer very slow on floor 3", "Several users see very slow printing."),
    ("nl", "Storing: e-mail ligt plat", "Niemand kan werken, Outlook ontvangt geen mail."),
    ("ru", "Не работает почта", "Outlook не получает письма, несколько пользователей не могут войти."),
    ("ru", "Принтер не печатает", "Очередь печати зависла."),
    ("en", "Our office moves to a new address on 1 May", "Please update your records."),
    ("nl", "Vraag over factuur", "Ik heb een vraag over de factuur van maart."),
    ("ru", "Вопрос по счёту", "У меня вопрос по счёту за февраль."),
]


def syllables(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(count))


def generate(folder: Path, count: int, seed: int = 7) -> None:
    """`count` article variants of the fixtures, written as the admin would keep them."""
    rng = random.Random(seed)
    bases = {lang: sorted((FIXTURES / lang).glob("*.md")) for lang in ("en", "nl", "ru")}
    pools = {lang: " ".join(p.read_text(encoding="utf-8") for p in paths).split() for lang, paths in bases.items()}
    for index in range(count):
        lang = ("en", "nl", "ru")[index % 3]
        base = bases[lang][(index // 3) % len(bases[lang])].read_text(encoding="utf-8")
        product = syllables(rng, 4).capitalize()
        extra = " ".join(rng.choices(pools[lang], k=rng.randint(50, 250)))
        text = base.replace("title: ", f"title: {product} – ", 1).replace("keywords: [", f"keywords: [{product}, ", 1)
        if not text.startswith("---"):
            text = f"---\ntitle: {product}\nlanguage: {lang}\n---\n" + text
        target = folder / lang / f"{index:05d}.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"{text}\n{extra}\n", encoding="utf-8")


def mails(count: int, seed: int = 11) -> list[tuple[str, str]]:
    """(language, subject + body) as an acknowledgement sees them; every fifth one long."""
    rng = random.Random(seed)
    out = []
    for index in range(count):
        lang, subject, body = MAILS[index % len(MAILS)]
        if index % 5 == 4:
            body = "\n\n".join([body] * 400)        # a long mail with quoted history: about 4,000 words
        out.append((lang, f"{subject}\n{body}"))
    rng.shuffle(out)
    return out


def time_search(kb: KnowledgeBase, queries: list[tuple[str, str]]) -> tuple[dict[str, list[float]], int]:
    """Milliseconds per mail, apart for short mails and long ones; how many got suggestions."""
    timings: dict[str, list[float]] = {"all": [], "short": [], "long": []}
    suggested = 0
    for lang, text in queries:
        start = time.perf_counter()
        found = kb.search(text, language=lang)
        elapsed = (time.perf_counter() - start) * 1000
        timings["all"].append(elapsed)
        timings["long" if len(text) > 2_000 else "short"].append(elapsed)
        suggested += bool(found)
    return timings, suggested


def compare(articles: list, queries: list[tuple[str, str]]) -> dict[str, object]:
    """The alternatives, on the same articles and mails."""
    import bm25s
    import Stemmer
    from rank_bm25 import BM25Okapi
    # snowballstemmer hands out PyStemmer's objects when PyStemmer is installed:
    # its own pure-Python classes are what it would be without it.
    from snowballstemmer.english_stemmer import EnglishStemmer
    from snowballstemmer.russian_stemmer import RussianStemmer

    results: dict[str, object] = {}
    for language, pure in (("en", EnglishStemmer), ("ru", RussianStemmer)):
        found = [w for a in articles if a.language == language for w in words(a.body)][:300_000]
        for name, stem in (("PyStemmer", Stemmer.Stemmer(STEMMERS[language]).stemWords),
                           ("snowballstemmer", pure().stemWords)):
            start = time.perf_counter()
            stem(found)
            results[f"stem {len(found):,} {language} words: {name} (s)"] = round(time.perf_counter() - start, 3)
    stemmers = Stemmers()
    corpus = [stemmers.tokens(a.body, a.language) for a in articles]
    query_tokens = [sorted({t for lang in ("en", "nl", "ru") for t in stemmers.tokens(text, lang)})
                    for _, text in queries]
    for name, build, score in (
            ("bm25s", lambda: _bm25s(bm25s, corpus), lambda index, q: index.get_scores(q) if q else None),
            ("rank-bm25", lambda: BM25Okapi(corpus), lambda index, q: index.get_scores(q))):
        start = time.perf_counter()
        index = build()
        results[f"index {len(corpus):,} bodies: {name} (s)"] = round(time.perf_counter() - start, 3)
        timings = []
        for q in query_tokens:
            q = [t for t in q if name != "bm25s" or t in index.vocab_dict]
            start = time.perf_counter()
            score(index, q)
            timings.append((time.perf_counter() - start) * 1000)
        results[f"score one mail: {name} median / p95 (ms)"] = f"{_median(timings)} / {_p95(timings)}"
    return results


def _bm25s(bm25s, corpus):  # type: ignore[no-untyped-def]
    index = bm25s.BM25()
    index.index(corpus, show_progress=False)
    return index


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def _p95(values: list[float]) -> float:
    return round(sorted(values)[int(len(values) * 0.95) - 1], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mt-kb-bench-") as tmp:
        folder = Path(tmp) / "kb"
        generate(folder, args.articles)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        loaded = read_folder(folder)
        read_s = time.perf_counter() - start
        kb = KnowledgeBase(loaded.articles)
        build_s = time.perf_counter() - start - read_s
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        queries = mails(args.mails)
        timings, suggested = time_search(kb, queries)
        results: dict[str, object] = {
            "articles": len(loaded.articles), "problems": len(loaded.problems),
            "read and parse (s)": round(read_s, 2), "build the index (s)": round(build_s, 2),
            "peak RSS growth (MB)": round((rss_after - rss_before) / 1024, 1),
            "mails": len(queries), "mails with suggestions": suggested,
            **{f"suggestion latency, {kind} mails, median / p95 (ms)": f"{_median(values)} / {_p95(values)}"
               for kind, values in timings.items()},
            "suggestion latency max (ms)": round(max(timings["all"]), 2),
            "target p95 (ms)": f"< {TARGET_MS:g}: {'met' if _p95(timings['all']) < TARGET_MS else 'MISSED'}",
        }
        if args.compare:
            results.update(compare(list(loaded.articles), queries))
        print_report(results, f"knowledge base: {args.articles:,} articles")


if __name__ == "__main__":
    main()
