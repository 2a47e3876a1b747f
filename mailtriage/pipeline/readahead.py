"""Bulk import's read-ahead: the next batch is hashed and parsed in a worker
process while the pipeline stores the current one.

    source files ─► batch n+1: sha256, limits, parse, language (worker) ─┐
                                                                         ├─► batch n: store (this process)
Parsing is pure (bytes in, ParsedMail out), so it can run anywhere; the
database work stays in one process and one transaction per batch. The worker
also splits each message's own text from its quotes and reads its language
(tickets.change.ReadAhead), so that the ticket step need not. A
mailbox of one batch, a one-core machine, or a worker that fails (killed,
or silent for RESULT_TIMEOUT) falls back to parsing here: the result is the
same, only slower.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime

from mailtriage.mail import limits, quotes
from mailtriage.mail.language import Detector
from mailtriage.model import Item, ParsedMail
from mailtriage.mail.parse import parse
from mailtriage.config.values import Limits
from mailtriage.tickets.change import NOT_READ, ReadAhead

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    source: str
    raw: bytes
    sha256: str
    mail: ParsedMail | None       # None: over a limit, or left for the pipeline to parse
    delivered: datetime | None = None
    read: ReadAhead = NOT_READ


def batches(items: Iterable[Item | tuple[str, bytes]], size: int, settings: Limits,
            languages: tuple[str, ...] | None = None) -> Iterator[list[Prepared]]:
    """`items` in batches of `size`, each message hashed and parsed; the
    mailbox is read one batch ahead, never more. `languages`: the detector's
    (mail.language.Detector), for the worker to read each message's language."""
    chunks = _chunks(items, size)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if second is None or (os.cpu_count() or 1) < 2:
        for chunk in _chain(first, second, chunks):
            yield _here(chunk, settings)
        return
    # spawn, not fork: the parent holds database connections and threads.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        worker = _Worker(pool, settings, languages)
        ahead = worker.submit(second)                      # starts the worker
        yield _here(first, settings)                       # stored while the worker starts and parses
        current = second
        for chunk in chunks:
            following = worker.submit(chunk)
            yield worker.collect(current, ahead)
            current, ahead = chunk, following
        yield worker.collect(current, ahead)


RESULT_TIMEOUT = 300.0      # seconds for the worker's batch (200 messages take well under one)


class _Worker:
    """The read-ahead worker, until it fails: killed (the kernel's OOM
    killer, an operator), unable to start, or silent for RESULT_TIMEOUT.
    From then on every batch is parsed here; the failure is logged once."""

    def __init__(self, pool: ProcessPoolExecutor, settings: Limits, languages: tuple[str, ...] | None) -> None:
        self.pool, self.settings, self.languages = pool, settings, languages
        self.gone = False

    def submit(self, chunk: list[Item]) -> Future | None:
        """The chunk handed to the worker; None: it is parsed here."""
        if self.gone:
            return None
        try:
            return self.pool.submit(prepare, [item.raw for item in chunk], self.settings, self.languages)
        except (BrokenProcessPool, OSError) as exc:
            self._failed(exc)
            return None

    def collect(self, chunk: list[Item], future: Future | None) -> list[Prepared]:
        if future is not None and not self.gone:
            try:
                return _collected(chunk, future.result(timeout=RESULT_TIMEOUT))
            except Exception as exc:  # noqa: BLE001 - a dead worker costs speed, not messages
                self._failed(exc)
        return _here(chunk, self.settings)

    def _failed(self, exc: BaseException) -> None:
        if not self.gone:
            log.warning("import read-ahead worker failed (%s): parsing in this process from here on",
                        str(exc) or exc.__class__.__name__)
        self.gone = True


def _here(chunk: list[Item], settings: Limits) -> list[Prepared]:
    return _collected(chunk, prepare([item.raw for item in chunk], settings))


def _collected(chunk: list[Item], results: list[tuple[str, ParsedMail | None, ReadAhead]]) -> list[Prepared]:
    return [Prepared(item.source, item.raw, digest, mail, item.delivered, read)
            for item, (digest, mail, read) in zip(chunk, results)]


def prepare(raws: list[bytes], settings: Limits,
             languages: tuple[str, ...] | None = None) -> list[tuple[str, ParsedMail | None, ReadAhead]]:
    """(sha256, parsed mail or None, what was read ahead) per message: the worker's
    whole job. Without `languages` (parsing in the importing process) the text
    and language are left to the ticket step."""
    detector = Detector(languages) if languages else None
    prepared = []
    for raw in raws:
        mail = _parse(raw, settings)
        read = NOT_READ if mail is None or detector is None else _read_ahead(mail, detector, settings)
        prepared.append((hashlib.sha256(raw).hexdigest(), mail, read))
    return prepared


def _read_ahead(mail: ParsedMail, detector: Detector, settings: Limits) -> ReadAhead:
    if limits.check_parsed(mail, settings) is not None:
        return NOT_READ                   # quarantined before the ticket step: nothing to read
    stated = mail.header("Content-Language")
    try:                                  # the body is split once: quotes.split_reply caches the last few
        return ReadAhead(quotes.split_reply(mail.body_text).text, detector.of_message(stated, mail.subject,
                         mail.body_text), detector.of_message(stated, "", mail.body_text))
    except Exception:  # noqa: BLE001 - the ticket step reads it again, and quarantines the message if it fails
        return NOT_READ


def _parse(raw: bytes, settings: Limits) -> ParsedMail | None:
    if limits.check_raw(raw, settings) is not None:
        return None                       # the pipeline quarantines it, with the figures
    try:
        return parse(raw)
    except Exception:  # noqa: BLE001 - the pipeline meets it again, in its savepoint, and quarantines it
        return None


def _chunks(items: Iterable[Item | tuple[str, bytes]], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item if isinstance(item, Item) else Item(*item))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _chain(first: list, second: list | None, rest: Iterator[list]) -> Iterator[list]:
    yield first
    if second is not None:
        yield second
        yield from rest
