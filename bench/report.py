"""Printing benchmark figures: an aligned table for people, then one JSON
line for machines (the last line of the output, so a caller can read it)."""

from __future__ import annotations

import json
from collections.abc import Mapping


def print_report(results: Mapping[str, object], title: str | None = None) -> None:
    print_table(results, title)
    print_json(results)


def print_table(results: Mapping[str, object], title: str | None = None) -> None:
    """One figure a line; lists (bench/run.py's targets) are left to the JSON."""
    if title:
        print(f"# {title}")
    shown = {key: value for key, value in results.items() if not isinstance(value, list)}
    width = max(map(len, shown), default=0)
    for key, value in shown.items():
        print(f"{key:<{width}}  {value}")


def print_json(results: Mapping[str, object]) -> None:
    print(json.dumps(results), flush=True)


def last_json(output: str) -> dict[str, object]:
    """The figures another bench script printed (its last line)."""
    return json.loads(output.strip().splitlines()[-1])
