"""Durations and shares as the config writes them: `15m`, `1h30m`, `80%`.

Pure text-to-value helpers used when config is loaded (SLA targets,
`warn_at`, poll intervals) and when durations are shown back to people
(`sla explain`, reports). A duration is a plain `timedelta`; which minutes
of it count is the business calendar's business, not this module's.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
# Units at most once each, largest first: `1h30m`, `2d 4h`, not `30m1h`.
_DURATION = re.compile(
    r"\s*(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*"
)
_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")
_HINT = "use e.g. 15m, 2h, 3d, 1h30m"


def parse_duration(text: str) -> timedelta:
    """Parse `90s`, `15m`, `2h`, `3d`, `1w` or a combination like `1h30m`.

    Units are w, d, h, m, s (lower case, whole numbers, largest first, each
    at most once); `d` is 24 hours and `w` 7 days. Zero (`0m`) is allowed;
    callers that need a positive duration check that themselves.
    """
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration ({_HINT}; a number needs a unit)")
    match = _DURATION.fullmatch(text)
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration ({_HINT})")
    seconds = sum(int(value) * factor
                  for value, factor in zip(match.groups(), _UNITS.values()) if value)
    return timedelta(seconds=seconds)


_WRITTEN_UNITS = tuple(_UNITS.items())[1:]        # what format_duration writes: days down to seconds


def format_duration(duration: timedelta) -> str:
    """Write a duration the way `parse_duration` reads it: `1h30m`, `3d`, `0s`.

    Days are the largest unit (`14d`, not `2w`); a negative duration gets a
    leading `-` (`-15m`, for "overdue by"); fractions of a second are
    dropped, so `parse_duration(format_duration(d)) == d` for whole seconds.
    """
    total = int(duration.total_seconds())
    sign, total = ("-", -total) if total < 0 else ("", total)
    parts = []
    for unit, factor in _WRITTEN_UNITS:
        count, total = divmod(total, factor)
        if count:
            parts.append(f"{count}{unit}")
    return sign + ("".join(parts) or "0s")


def parse_percent(value: str | float) -> float:
    """Parse a share: `"80%"` or `0.8` (also `"0.8"`) → 0.8, between 0 and 1.

    A bare number above 1 (`80`) is refused rather than guessed: it is
    almost always a forgotten `%`.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a percentage (use e.g. 80% or 0.8)")
    share: float | None
    if isinstance(value, str):
        match = _PERCENT.fullmatch(value)
        if match:
            share = float(match.group(1)) / 100
        else:
            share = _float_or_none(value)
    elif isinstance(value, (int, float)):
        share = float(value)
    else:
        share = None
    if share is None:
        raise ValueError(f"{value!r} is not a percentage (use e.g. 80% or 0.8)")
    if not 0.0 <= share <= 1.0:
        hint = f"; did you mean {value}%?" if share > 1 and not str(value).strip().endswith("%") else ""
        raise ValueError(f"{value!r} is not between 0% and 100%{hint}")
    return share


def _float_or_none(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number else None  # NaN is not a share
