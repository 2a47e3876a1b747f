"""Quote and signature trimming on the corpus oracles: `python bench/trimming.py [--rounds 40]`.

The 53 oracles of tests/corpus/test_reply_trimming.py (talon and
email-reply-parser fixtures in ../shared/corpus): the score by group, then
the CPU time of `quotes.split_reply()` per message — the least of the
rounds, so that other work on the machine counts as little as it can —
over the 51 ordinary fixtures, and for the two large ones alone
(`pathological`, `email_long_quote`, 750 KB).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "corpus"))
sys.path.insert(0, str(ROOT))

from mailtriage.mail.quotes import split_reply                      # noqa: E402
from test_reply_trimming import Case, cases, verdict                # noqa: E402

LARGE = ("erp/pathological", "erp/email_long_quote")
GROUPS = (("email-reply-parser", "erp/"), ("zapier", "zapier/"), ("talon standard", "talon/standard_replies/"),
          ("talon HTML", "talon/html_replies/"), ("talon signatures", "talon/signature/"))


def cpu_per_message(group: list[Case], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for case in group:
            split_reply(case.text)
        best = min(best, (time.process_time() - started) / len(group))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--corpus", type=Path, default=Path(os.environ.get("MAILTRIAGE_CORPUS",
                                                                         ROOT.parent / "shared" / "corpus")))
    args = parser.parse_args()
    found = cases(args.corpus)
    passed: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    for case in found:
        group = next(name for name, prefix in GROUPS if case.name.startswith(prefix))
        total[group] += 1
        ok, why = verdict(case)
        passed[group] += ok
        if not ok:
            print(f"  miss {case.name}: {why}")
    print(", ".join(f"{name} {passed[name]}/{total[name]}" for name, _ in GROUPS))
    score = sum(passed.values())
    print(f"score: {score}/{len(found)} = {score / len(found):.1%}")
    ordinary = [case for case in found if case.name not in LARGE]
    cpu_per_message(found, 1)                                        # compile and cache the patterns
    print(f"split_reply: {cpu_per_message(ordinary, args.rounds) * 1000:.3f} ms CPU a message "
          f"over {len(ordinary)} ordinary fixtures (least of {args.rounds} rounds)")
    for case in found:
        if case.name in LARGE:
            print(f"split_reply: {cpu_per_message([case], max(1, args.rounds // 4)) * 1000:.2f} ms CPU "
                  f"for {case.name} ({len(case.text):,} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
