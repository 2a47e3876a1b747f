"""The daemon's log lines: `text` (the default, for a terminal) or `json`,
one JSON object per line for a log shipper (journald's JSON output, Loki,
Elasticsearch): `time` (ISO-8601, UTC), `level`, `logger`, `message`, and
`exception` (the traceback) when there is one.

The JSON is python-json-logger's `JsonFormatter` (README.md, "Logs", says
why): the message is formatted exactly as the text line's, so what keeps
secrets out of the text log keeps them out of the JSON too.
"""

from __future__ import annotations

import logging
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def json_formatter() -> logging.Formatter:
    return JsonFormatter("%(levelname)s %(name)s %(message)s", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"})


def use_format(kind: LogFormat, root: logging.Logger | None = None) -> None:
    """Give every handler of the root logger the format; JSON also takes in
    Python's warnings, so that no line of the daemon is anything but JSON."""
    root = root or logging.getLogger()
    formatter = json_formatter() if kind == "json" else logging.Formatter(TEXT)
    for handler in root.handlers:
        handler.setFormatter(formatter)
    if kind == "json":
        logging.captureWarnings(True)
