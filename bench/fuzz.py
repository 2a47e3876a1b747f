"""The long fuzz run: `python bench/fuzz.py [--seconds 60] [--pipeline]`.

Mutated corpus messages (tests/fuzzing.py: bytes flipped, MIME and header
syntax spliced in, slices cut and doubled) through limits → parse → guards
(and the delivery path) → bounces → thread → quote trimming → classify → the acknowledgement's
composition, with every invariant asserted, for as long as asked.
`--pipeline` also sends each one through the whole pipeline on a throw-away
SQLite site (slower): stored byte for byte, and never quarantined for an
error (over a limit is fine).

Prints how long it ran, how many messages, what they were, and the result;
on a failure, Hypothesis's smallest failing message, and exit status 1.
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from fuzzing import check, corpus_messages, default_rules, mutated  # noqa: E402

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run (default 60)")
    parser.add_argument("--batch", type=int, default=500, help="examples per Hypothesis run")
    parser.add_argument("--pipeline", action="store_true", help="also run the whole pipeline on SQLite")
    args = parser.parse_args()
    logging.disable(logging.WARNING)          # quarantine warnings are expected, by the thousand

    messages = corpus_messages()
    if not messages:
        print("fuzz: no corpus (set MAILTRIAGE_CORPUS)", file=sys.stderr)
        return 2
    rules = default_rules()
    seen: collections.Counter[str] = collections.Counter()
    run = _pipeline_runner() if args.pipeline else None

    @settings(max_examples=args.batch, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(raw=mutated(messages))
    def one(raw: bytes) -> None:
        seen[check(raw, rules)] += 1
        if run is not None:
            seen["pipeline:" + run(raw)] += 1

    start = time.monotonic()
    batches = 0
    result = "ok"
    try:
        while time.monotonic() - start < args.seconds:
            one()
            batches += 1
    except Exception as exc:  # the shrunk failing examples are in the exception's notes
        traceback.print_exception(exc)
        result = f"FAILED: {type(exc).__name__}: {str(exc)[:500]}"
    elapsed = time.monotonic() - start
    examples = sum(n for key, n in seen.items() if not key.startswith("pipeline:"))
    print(f"fuzz: {elapsed:.1f} s, {batches} runs of up to {args.batch}, {examples} mutated messages "
          f"from {len(messages)} corpus messages ({examples / max(elapsed, 1e-9):.0f}/s)"
          f"{', whole pipeline too' if run else ''}")
    for key, count in seen.most_common():
        print(f"  {count:>7}  {key}")
    print(f"fuzz: {result}")
    return 0 if result == "ok" else 1


def _pipeline_runner():  # type: ignore[no-untyped-def]
    """Each message through pipeline.process on one throw-away SQLite site."""
    from helpers import make_site, site_app
    from mailtriage import pipeline
    from mailtriage.store.schema import RawMessage

    site = make_site(Path(tempfile.mkdtemp(prefix="mt-fuzz.")) / "site")
    app = site_app(site, T0)

    def run(raw: bytes) -> str:
        outcome = pipeline.process(app, raw, T0)
        assert not outcome.action.startswith("quarantined:error"), outcome
        with app.store.session() as session:
            stored = session.get(RawMessage, outcome.raw_id)
            assert stored is not None and stored.data == raw
        return outcome.action.split(":", 2)[0] if not outcome.action.startswith("quarantined") else outcome.action

    return run


if __name__ == "__main__":
    sys.exit(main())
