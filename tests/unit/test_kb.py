"""The knowledge base: articles parsed from Markdown, and the ranking that
picks what an acknowledgement suggests (pure; the fixture KB is 30 articles
in English, Dutch and Russian, tests/fixtures/kb)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from helpers import ROOT
from mailtriage.errors import Problem
from mailtriage.kb.article import Article, parse_article
from mailtriage.kb.index import EMPTY, KnowledgeBase
from mailtriage.kb.load import MAX_ARTICLE_SIZE, read_folder
from mailtriage.kb.text import STEMMERS

FIXTURES = ROOT / "tests" / "fixtures" / "kb"
UNRELATED = [
    "Our office moves to a new address on 1 May",
    "Thank you for the flowers!",
    "Lunch order for Friday: pizza or sushi?",
    "Can you order me a second monitor?",
    "Our website is down, customers see an error page",
    "Vraag over mijn factuur\nGoedemiddag, ik heb een vraag over de factuur van vorige maand. Groet, Jan",
    "De koffieautomaat op de tweede verdieping is kapot",
    "Счёт за март\nДобрый день, пришлите, пожалуйста, счёт за март. Спасибо!",
    "Кондиционер в переговорной не работает",
]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    loaded = read_folder(FIXTURES)
    assert loaded.problems == ()
    return KnowledgeBase(loaded.articles)


def paths(found) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.path for s in found]


# -- articles -----------------------------------------------------------------

def test_front_matter_gives_title_keywords_language_and_url():
    text = "---\ntitle: VPN werkt niet\nkeywords: [vpn, verbinding]\nlanguage: nl-BE\n" \
           "url: https://help.example.test/nl/vpn\n---\n# Iets anders\nTekst.\n"
    article = parse_article(text, "vpn.md", "en")
    assert article == Article("vpn.md", "VPN werkt niet", 2, "nl", "https://help.example.test/nl/vpn",
                              ("vpn", "verbinding"), "# Iets anders\nTekst.\n")


def test_without_front_matter_the_heading_is_the_title_and_the_folder_the_language():
    article = parse_article("Intro line\n\n## Account voor een nieuwe medewerker ##\nTekst.", "nl/new.md", "en")
    assert isinstance(article, Article)
    assert (article.title, article.title_line, article.language, article.url) == \
        ("Account voor een nieuwe medewerker", 3, "nl", None)
    topic = parse_article("No heading at all.", "faq/reset-your-password.md", "en")
    assert isinstance(topic, Article)
    assert (topic.title, topic.language) == ("reset your password", "en")     # `faq/` is a topic, not a language


@pytest.mark.parametrize("text, line, message", [
    ("---\ntitle: x\n", 1, "never closed"),
    ("---\ntitle: VPN\nkeywords: [vpn\n---\nbody", 4, "front matter: YAML"),
    ("---\ntitle: A: b: c\n---\n", 2, "front matter: YAML"),
    ("---\n- just\n- a list\n---\n", 2, "must be keys and values"),
    ("---\ntitle: ok\nurl: javascript:alert(1)\n---\n", 3, "not one http(s) address"),
    ("---\ntitle: ok\nurl: \"https://a.example/\\u202egnp.exe\"\n---\n", 3, "not one http(s) address"),
    ("---\n\ntitle: [a, b]\n---\n", 3, "title must be text"),
    ("---\nkeywords: {a: 1}\n---\n", 2, "keywords must be a list"),
    ("---\nlanguage: not a tag\n---\n", 2, "no language tag"),
])
def test_broken_front_matter_is_a_problem_at_its_line(text, line, message):
    problem = parse_article(text, "kb/a.md", "en")
    assert isinstance(problem, Problem)
    assert (problem.file, problem.line) == ("kb/a.md", line) and message in problem.message


def test_a_title_is_one_line_of_printable_text():
    article = parse_article('---\ntitle: "VPN\\u202e gnikrow\\nnot\\x00 here"\n---\n', "a.md", "en")
    assert isinstance(article, Article) and article.title == "VPN gnikrow not here"


def test_every_stemmed_language_is_a_snowball_algorithm_pystemmer_has():
    import Stemmer

    assert set(STEMMERS.values()) <= set(Stemmer.algorithms())


# -- the folder ---------------------------------------------------------------

def test_a_broken_article_is_reported_and_the_rest_still_load(tmp_path):
    folder = tmp_path / "kb"
    shutil.copytree(FIXTURES, folder)
    (folder / "nl" / "kapot.md").write_text("---\ntitle: Kapot\nkeywords: [vpn\n---\nTekst\n", encoding="utf-8")
    (folder / "en" / "latin1.md").write_bytes("# Caf\xe9\n".encode("latin-1"))
    (folder / "en" / "copy.md").write_text("---\nlanguage: en\n\ntitle: The VPN does NOT connect\n---\n")
    (folder / ".drafts").mkdir()
    (folder / ".drafts" / "wip.md").write_text("---\nnever closed\n")
    loaded = read_folder(folder)
    assert len(loaded.articles) == 31                # the 30 and the duplicate, which is only reported
    problems = sorted(map(str, loaded.problems))
    assert len(problems) == 3, problems
    assert problems[0] == f"{folder}/en/latin1.md:1: not UTF-8 (invalid continuation byte): not indexed"
    assert problems[1] == (f"{folder}/en/vpn.md:2: duplicate title 'The VPN does not connect': "
                           f"also {folder}/en/copy.md:4")
    assert problems[2].startswith(f"{folder}/nl/kapot.md:4: front matter: YAML: ")   # where the parser saw it


def test_an_article_over_the_size_limit_is_refused_without_reading_it(tmp_path):
    (tmp_path / "huge.md").touch()
    with (tmp_path / "huge.md").open("r+b") as handle:
        handle.truncate(10 * 1024**2)                # 10 MB (sparse: nothing is written, nothing is read)
    (tmp_path / "ok.md").write_text("# Fine\n")
    loaded = read_folder(tmp_path)
    assert [a.title for a in loaded.articles] == ["Fine"]
    assert [str(p) for p in loaded.problems] == [f"{tmp_path}/huge.md:1: article is 10.0 MB, over the "
                                                 f"{MAX_ARTICLE_SIZE / 1024**2:.1f} MB limit: not indexed"]


def test_a_missing_folder_is_one_problem_and_no_articles(tmp_path):
    loaded = read_folder(tmp_path / "nowhere")
    assert loaded.articles == () and [p.message for p in loaded.problems] == ["knowledge base folder not found"]


# -- the ranking --------------------------------------------------------------

def test_a_dutch_vpn_mail_gets_the_dutch_vpn_article_first(kb):
    assert paths(kb.search("VPN werkt niet sinds vanochtend"))[0] == "nl/vpn.md"
    found = kb.search("VPN werkt niet sinds vanochtend", language="nl")
    assert paths(found)[0] == "nl/vpn.md" and len(found) <= 3
    assert found[0].title == "VPN werkt niet" and found[0].url == "https://help.example.test/nl/vpn"


@pytest.mark.parametrize("text", UNRELATED)
def test_an_unrelated_mail_gets_no_suggestion(kb, text):
    assert kb.search(text) == []
    assert kb.search(text, language="en") == []


@pytest.mark.parametrize("text, language, first", [
    ("Не могу войти, забыл пароль", "ru", "ru/parol.md"),
    ("I forgot my password and my account is locked", "en", "en/password.md"),
    ("Printer print niet\nHij geeft een papierstoring aan", "nl", "nl/printer.md"),
    ("Нет звука в Teams, микрофон не работает", "ru", "ru/teams.md"),
    ("I got a new phone and the authenticator code is gone", "en", "en/mfa.md"),
    ("Mijn laptop is erg traag sinds de updates", "nl", "nl/trage-laptop.md"),
    ("Hello,\n\nsince this morning I cannot connect to the VPN from home.\n\nRegards, Tom", "en", "en/vpn.md"),
])
def test_each_language_finds_its_own_article_through_the_stems(kb, text, language, first):
    assert paths(kb.search(text, language=language))[0] == first


def test_the_customers_language_comes_first_then_the_others_by_score(kb):
    text = "VPN is down. Nobody can work."
    assert paths(kb.search(text, language="ru")) == ["ru/vpn.md", "en/vpn.md", "nl/vpn.md"]
    assert paths(kb.search(text, language="en")) == ["en/vpn.md", "nl/vpn.md", "ru/vpn.md"]
    assert paths(kb.search(text, language="en", limit=1)) == ["en/vpn.md"]
    assert kb.search(text, limit=0) == []


def test_kb_search_ranking_shows_scores_and_why_an_article_is_or_is_not_suggested(kb):
    ranking = kb.rank("VPN werkt niet sinds vanochtend")
    assert ranking[0].path == "nl/vpn.md" and ranking[0].named_by == "title 'VPN werkt niet'"
    assert [s.score for s in ranking] == sorted((s.score for s in ranking), reverse=True)
    assert any(not kb.is_suggested(s) for s in ranking)       # the ranking goes on past the threshold


def test_nothing_to_match_finds_nothing(kb):
    assert kb.search("") == [] and kb.search("?!. -- 1") == [] and kb.rank("") == []
    assert EMPTY.search("VPN werkt niet") == [] and len(EMPTY) == 0


def test_a_long_mail_is_judged_by_its_start(kb):
    text = "VPN werkt niet sinds vanochtend.\n" + "bla " * 100_000 + "printer papierstoring toner"
    assert paths(kb.search(text, language="nl")) == ["nl/vpn.md", "ru/vpn.md", "en/vpn.md"]


def test_threads_searching_at_once_get_what_one_thread_gets(kb):
    texts = ["VPN werkt niet sinds vanochtend", "Не могу войти, забыл пароль", "camera does not work in Teams",
             "Printer print niet", *UNRELATED]
    expected = {text: kb.search(text) for text in texts}
    results: list[bool] = []

    def worker() -> None:
        for _ in range(20):
            results.extend(kb.search(text) == expected[text] for text in texts)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 * 20 * len(texts) and all(results)
