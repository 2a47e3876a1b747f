"""Configuration values' building blocks: the field types (durations, sizes,
addresses), the frozen base model and config-relative paths (pure)."""

from __future__ import annotations

import os
import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from mailtriage.model import Severity
from mailtriage.sla.durations import parse_duration, parse_percent

ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+$")


def duration_of(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    return parse_duration(str(value))


def percent_of(value: Any) -> float:
    return parse_percent(value if isinstance(value, (int, float)) else str(value))


def address_of(value: Any) -> str:
    text = str(value).strip().lower()
    if not ADDRESS.match(text):
        raise ValueError(f"{value!r} is not an email address")
    return text


def size_of(value: Any) -> int:
    """`25MB`, `512KB`, `1GB` or a plain number of bytes."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?B?)\s*", str(value), re.IGNORECASE)
    if not match:
        raise ValueError(f"{value!r} is not a size (use e.g. 25MB, 512KB)")
    unit = match.group(2).upper().rstrip("B")
    return int(match.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[unit]


def time_of_day(value: Any) -> time:
    """`"08:00"`: a local time of day. YAML 1.1 reads an unquoted 10:30 as the
    number 630 (base 60), so a number is refused with the fix."""
    if isinstance(value, time):
        return value
    if isinstance(value, int):
        raise ValueError(f"write the time of day in quotes (\"HH:MM\"): unquoted, YAML reads it as "
                         f"the number {value}")
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


def config_path(base_dir: str | Path, relative: str) -> Path:
    """A path named in a config file: `~` expanded, relative ones start at the file's folder."""
    candidate = Path(os.path.expanduser(relative))
    return candidate if candidate.is_absolute() else Path(base_dir) / candidate


Duration = Annotated[timedelta, BeforeValidator(duration_of)]
Percent = Annotated[float, BeforeValidator(percent_of)]
Address = Annotated[str, BeforeValidator(address_of)]
Size = Annotated[int, BeforeValidator(size_of)]
TimeOfDay = Annotated[time, BeforeValidator(time_of_day)]
# One row of priority_matrix: the severities for urgency high, medium, low.
MatrixRow = Annotated[list[Severity], Field(min_length=3, max_length=3)]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
