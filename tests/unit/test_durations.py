"""Durations and percentages as the config writes them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailtriage.sla import format_duration, parse_duration, parse_percent


@pytest.mark.parametrize("text, expected", [
    ("90s", timedelta(seconds=90)),
    ("15m", timedelta(minutes=15)),
    ("2h", timedelta(hours=2)),
    ("3d", timedelta(days=3)),
    ("1w", timedelta(weeks=1)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ("1w2d", timedelta(days=9)),
    (" 1h 30m ", timedelta(hours=1, minutes=30)),
    ("0m", timedelta(0)),
    ("120m", timedelta(hours=2)),
])
def test_parse_duration_valid(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", [
    "", " ", "15", "15x", "m", "1.5h", "-15m", "30m1h", "1h1h", "15 minutes", "1H", "h1", "1h30",
])
def test_parse_duration_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_parse_duration_message_names_the_text_and_the_form() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("15x")
    assert str(info.value) == "'15x' is not a duration (use e.g. 15m, 2h, 3d, 1h30m)"


@pytest.mark.parametrize("value", [15, 1.5, None, timedelta(minutes=1)])
def test_parse_duration_refuses_non_text(value: object) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("duration, text", [
    (timedelta(0), "0s"),
    (timedelta(seconds=90), "1m30s"),
    (timedelta(minutes=15), "15m"),
    (timedelta(hours=1, minutes=30), "1h30m"),
    (timedelta(days=3), "3d"),
    (timedelta(weeks=2), "14d"),
    (timedelta(days=1, seconds=1), "1d1s"),
    (-timedelta(minutes=15), "-15m"),
    (timedelta(seconds=1, microseconds=999_999), "1s"),
])
def test_format_duration(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=10 * 365 * 86400))
def test_format_then_parse_is_identity_for_whole_seconds(seconds: int) -> None:
    duration = timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration


@pytest.mark.parametrize("value, expected", [
    ("80%", 0.8), (" 80 % ", 0.8), ("100%", 1.0), ("0%", 0.0), ("12.5%", 0.125),
    (0.8, 0.8), ("0.8", 0.8), (1, 1.0), (0, 0.0),
])
def test_parse_percent_valid(value: object, expected: float) -> None:
    assert parse_percent(value) == pytest.approx(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize("value, message", [
    ("80", "did you mean 80%"),
    (80, "did you mean 80%"),
    ("150%", "not between 0% and 100%"),
    (-0.1, "not between"),
    ("eighty", "is not a percentage"),
    ("%", "is not a percentage"),
    ("nan", "is not a percentage"),
    (True, "is not a percentage"),
    (None, "is not a percentage"),
])
def test_parse_percent_invalid(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_percent(value)  # type: ignore[arg-type]
