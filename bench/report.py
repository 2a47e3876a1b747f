"""Printing benchmark figures: an aligned table for people, then one JSON
line for machines (the last line of the output, so a caller can read it)."""

from __future__ import annotations

import json
from collections.abc import Mapping


def print_report(results: Mapping[str, object], title: str | None = None) -> None:
    if title:
        print(f"# {title}")
    width = max(map(len, results), default=0)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(results), flush=True)


def last_json(output: str) -> dict[str, object]:
    """The figures another bench script printed (its last line)."""
    return json.loads(output.strip().splitlines()[-1])
