"""`ingest` reading one message from stdin: an MTA's pipe (Postfix pipe(8),
Exim's pipe transport, a sendmail prog mailer). Whatever goes wrong on our
side leaves the message with the MTA, to be retried; never a bounce to the
customer.

    stdin ─► config ─► database ─► raw bytes committed ─► exit 0, whatever became of it (`REF action`)
               │            └─ any failure before the commit ─► exit 75 (EX_TEMPFAIL)
               └─ cannot be loaded, or a bad command line ─► exit 78 (EX_CONFIG)

The reason is one line on stderr, led by its RFC 3463 status code. That code
is for Postfix: pipe(8) takes a leading 4.X.X over the exit status, and
without it maps 78 to 5.3.5, a bounce (tests/integration/test_postfix.py
shows both on a real Postfix). With -v the log and the traceback follow the
line; without it nothing else reaches stderr.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import traceback
from datetime import datetime

from mailtriage import pipeline
from mailtriage.app import App
from mailtriage.cli import common
from mailtriage.errors import EX_CONFIG, EX_TEMPFAIL, exit_code, one_line
from mailtriage.model import Disposition, Outcome

STATUS = {EX_TEMPFAIL: "4.3.0 mailtriage: temporary failure, try again later",
          EX_CONFIG: "4.3.5 mailtriage: configuration error"}
_TAKES_VALUE = ("--rcpt", "--now", "--config")


def is_pipe(args: argparse.Namespace) -> bool:
    return args.command == "ingest" and not args.files


def named(argv: list[str]) -> bool:
    """Whether a command line the parser refused meant the pipe: `ingest`, no FILE."""
    words: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in _TAKES_VALUE
        else:
            words.append(word)
    return words == ["ingest"]


def run(args: argparse.Namespace) -> int:
    """Run `ingest` under the pipe's rules (args.handler reaches ingest() below)."""
    log = _log_into_buffer(args.verbose)
    try:
        status = int(args.handler(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the MTA must see 75 or 78, never 1
        return failed(exc, args.verbose, log)
    if args.verbose:
        sys.stderr.write(log.getvalue())
    return status


def failed(exc: BaseException, verbose: int, log: io.StringIO | None = None) -> int:
    status = exit_code(exc, mta_pipe=True)
    print(f"{STATUS[status]}: {one_line(exc)}", file=sys.stderr, flush=True)
    if verbose:
        sys.stderr.write(log.getvalue() if log is not None else "")
        sys.stderr.write("".join(traceback.format_exception(exc)))
    return status


def ingest(args: argparse.Namespace) -> int:
    """One message from stdin: commit it, then process it. Once it is committed
    the answer is 0: the MTA must not deliver it again."""
    raw = sys.stdin.buffer.read()
    app = common.app(args)
    now = app.clock.now()
    raw_id, seen = pipeline.accept(app, raw, now, source="stdin")
    outcome = seen or _process(app, raw_id, now, tuple(a.lower() for a in args.rcpt))
    print(outcome.line(), flush=True)
    return 0


def _process(app: App, raw_id: int, now: datetime, rcpts: tuple[str, ...]) -> Outcome:
    try:
        return pipeline.process_stored(app, raw_id, now, envelope_rcpts=rcpts)
    except Exception as exc:  # noqa: BLE001 - stored: the daemon's housekeeping takes it from here
        print(f"mailtriage: stored as raw message {raw_id}, processing failed and is retried later: "
              f"{one_line(exc)}", file=sys.stderr)
        return Outcome(Disposition.PENDING, None, None, raw_id)


def _log_into_buffer(verbose: int) -> io.StringIO:
    """The log goes to a buffer, written after the reason (-v) or dropped: the
    MTA reads the first line of our output."""
    buffer = io.StringIO()
    root = logging.getLogger()
    if not root.handlers:                 # a real process; in-process callers keep their own logging
        logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), stream=buffer,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.captureWarnings(True)
    return buffer
