"""Business calendars: which instants are working time, and business-time sums.

Beside the message flow: SLA deadlines (`sla/deadlines.py`) ask a Calendar
"when has this much working time passed?" and reports ask "how much working
time lies between these two instants?". Pure: every instant is a parameter
and no clock is read.

Working time is real elapsed time inside the calendar's windows. A window is
written in local wall time ("08:00-20:00") and belongs to the day it starts
on, even when it runs past midnight ("22:00-06:00"). On a holiday no window
that starts that day counts. Windows are turned into instants with zoneinfo
(fold=0), so on DST days "08:00-20:00" is 11 or 13 real hours, a wall time
skipped by spring-forward is moved later by the length of the gap (02:30 →
03:30, as java.time and dateutil do), and an ambiguous autumn wall time means
its first occurrence. Every result is an aware UTC datetime; naive datetimes
are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, Iterator, Mapping, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as pyholidays

from mailtriage.errors import CalendarError

__all__ = ["Calendar", "DailyWindow", "calendar_from_config"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
SEARCH_LIMIT_DAYS = 3 * 366  # no working time for this long: give up, never loop forever
_DAYS_KEPT = 4 * 366         # days of windows a calendar keeps computed

Interval = tuple[datetime, datetime]


class DailyWindow(NamedTuple):
    """One opening on a weekday, in minutes after that day's local midnight.

    `end` is greater than `start`; above 1440 the window runs past midnight
    into the next day ("22:00-06:00" is (1320, 1800); "00:00-24:00" is (0, 1440)).
    """

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end % MINUTES_PER_DAY or self.end)}"


_ALL_DAY = ((DailyWindow(0, MINUTES_PER_DAY),),)        # a day of `hours: 24x7`


@dataclass(frozen=True)
class Calendar:
    """A time zone, weekly working hours and holidays; a hashable value.

    `weekly` has seven entries, Monday first, each a tuple of DailyWindows.
    `country`/`subdiv` name python-holidays' public holidays ("NL", "US"+"NY");
    `extra_holidays` adds single dates (company days off).
    """

    name: str
    timezone: ZoneInfo
    weekly: tuple[tuple[DailyWindow, ...], ...]
    country: str | None = None
    subdiv: str | None = None
    extra_holidays: frozenset[date] = frozenset()
    # The windows of each local date asked for: a pure function of the fields
    # above, asked for again by every deadline (not part of the value).
    _days: dict[date, list[Interval]] = field(default_factory=dict, init=False, repr=False, compare=False)
    # 24x7 without holidays: every instant is working time, so a sum is plain
    # arithmetic (the windows of one day end where the next day's begin, DST or not).
    _continuous: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_weekly(self.weekly)
        if self.country is not None:
            _check_country(self.country, self.subdiv)
        object.__setattr__(self, "_continuous", self.weekly == _ALL_DAY * 7 and self.country is None
                           and not self.extra_holidays)

    # -- questions about one instant ------------------------------------

    def is_holiday(self, day: date) -> bool:
        """Whether windows starting on this local date are cancelled."""
        if day in self.extra_holidays:
            return True
        return self.country is not None and day in _public_holidays(self.country, self.subdiv, day.year)

    def is_working_day(self, day: date) -> bool:
        """Whether the local date has working hours: a window starts on its weekday and it is no holiday."""
        return bool(self.weekly[day.weekday()]) and not self.is_holiday(day)

    def is_working(self, instant: datetime) -> bool:
        """Whether `instant` lies inside a window (opening included, close excluded)."""
        at = _utc(instant)
        start, _ = next(self._pieces(at))
        return start == at

    def next_opening(self, instant: datetime) -> datetime:
        """`instant` itself when it is working time, else the next window's opening."""
        start, _ = next(self._pieces(_utc(instant)))
        return start

    # -- business-time arithmetic -----------------------------------------

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which `duration` of working time has passed since `start`.

        Outside working time the count starts at the next opening. The result
        may be a window's close (exactly used up), never a later opening. A
        zero duration returns `start` unchanged, even outside working time.
        """
        if duration < timedelta(0):
            raise ValueError(f"cannot add a negative duration ({duration}) of working time")
        at = _utc(start)
        if not duration or self._continuous:
            return at + duration
        remaining = duration
        for opening, close in self._pieces(at):
            if close - opening >= remaining:
                return opening + remaining
            remaining -= close - opening
        raise AssertionError("unreachable: _pieces never ends")  # pragma: no cover

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Working time in [a, b); zero when b <= a."""
        if self._continuous:
            return max(_utc(b) - _utc(a), timedelta(0))
        return sum((close - opening for opening, close in self.windows(a, b)), timedelta(0))

    def windows(self, start: datetime, end: datetime) -> Iterator[Interval]:
        """The working intervals within [start, end), clipped, merged, in order, in UTC."""
        lo, hi = _utc(start), _utc(end)
        pending: Interval | None = None
        for opening, close in self._pieces(lo, until=hi):
            if opening >= hi:
                break
            close = min(close, hi)
            if pending is not None and opening <= pending[1]:
                pending = (pending[0], close)
                continue
            if pending is not None:
                yield pending
            pending = (opening, close)
        if pending is not None:
            yield pending

    def explain(self, start: datetime, duration: timedelta) -> list[Interval]:
        """The windows that counted towards `add(start, duration)`, for `sla explain`."""
        return list(self.windows(start, self.add(start, duration)))

    # -- the building block -------------------------------------------------

    def _pieces(self, after: datetime, until: datetime | None = None) -> Iterator[Interval]:
        """Non-overlapping working intervals ending after `after`, in order.

        Intervals are clipped to begin no earlier than `after` and are not
        merged (24x7 yields one piece per day). Stops past `until`'s local
        date; without `until` it runs on, raising ValueError after
        SEARCH_LIMIT_DAYS days without working time.
        """
        day = after.astimezone(self.timezone).date() - timedelta(days=1)  # yesterday may run past midnight
        last_day = until.astimezone(self.timezone).date() if until is not None else date.max
        edge, idle = after, 0
        while day <= last_day:
            idle += 1
            for opening, close in self._day_windows(day):
                opening = max(opening, edge)
                if close > opening:
                    yield opening, close
                    edge, idle = close, 0
            if until is None and idle > SEARCH_LIMIT_DAYS:
                raise ValueError(f"calendar {self.name!r} has no working time in the "
                                 f"{SEARCH_LIMIT_DAYS} days before {day.isoformat()}")
            day += timedelta(days=1)

    def _day_windows(self, day: date) -> list[Interval]:
        """The windows starting on local date `day`, as UTC intervals (cached)."""
        windows = self._days.get(day)
        if windows is None:
            if len(self._days) >= _DAYS_KEPT:
                self._days.clear()
            windows = self._days[day] = self._compute_day_windows(day)
        return windows

    def _compute_day_windows(self, day: date) -> list[Interval]:
        if self.is_holiday(day):
            return []
        spans = [(self._instant(day, w.start), self._instant(day, w.end))
                 for w in self.weekly[day.weekday()]]
        # A window inside a spring-forward gap can come out empty or reversed.
        return sorted(span for span in spans if span[1] > span[0])

    def _instant(self, day: date, minute: int) -> datetime:
        days, minute = divmod(minute, MINUTES_PER_DAY)
        local = datetime.combine(day + timedelta(days=days), time(minute // 60, minute % 60),
                                 tzinfo=self.timezone)
        return local.astimezone(timezone.utc)


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()}: business time needs an aware instant")
    return instant.astimezone(timezone.utc)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@lru_cache(maxsize=256)
def _public_holidays(country: str, subdiv: str | None, year: int) -> frozenset[date]:
    """Public holidays for one year; a pure function, so caching it is safe."""
    return frozenset(pyholidays.country_holidays(country, subdiv=subdiv, years=year))


def _check_country(country: str, subdiv: str | None) -> None:
    try:
        pyholidays.country_holidays(country, subdiv=subdiv)
    except NotImplementedError as exc:
        code = f"{country}-{subdiv}" if subdiv else country
        raise CalendarError(("holidays",), f"{code!r} is not a country or subdivision "
                            f"python-holidays knows ({exc})") from None


def _check_weekly(weekly: tuple[tuple[DailyWindow, ...], ...]) -> None:
    """Seven days of valid windows, at least one, none overlapping another."""
    if len(weekly) != 7:
        raise CalendarError(("hours",), f"need 7 days of hours, got {len(weekly)}")
    week = MINUTES_PER_DAY * 7
    spans = []
    for day, windows in enumerate(weekly):
        for window in windows:
            if not (0 <= window.start < MINUTES_PER_DAY and window.start < window.end
                    <= window.start + MINUTES_PER_DAY):
                raise CalendarError(("hours",), f"{DAY_NAMES[day]} {window!r} is not a valid window")
            offset = day * MINUTES_PER_DAY
            spans.append((offset + window.start, offset + window.end, f"{DAY_NAMES[day]} {window}"))
    if not spans:
        raise CalendarError(("hours",), "no working time in the week (every day is closed)")
    spans.sort()
    # Compare each with the previous one, and the last ones with the first one a week later.
    for (_, end, label), (start, _, other) in zip(spans, spans[1:] + [(spans[0][0] + week, 0, spans[0][2])]):
        if start < end:
            raise CalendarError(("hours",), f"{label!r} overlaps {other!r}")


# -- reading the `calendars:` config section ----------------------------------

_KEYS = ("timezone", "hours", "holidays", "extra_holidays")
_RANGE_HINT = 'like "08:00-20:00" (quoted; "22:00-06:00" runs past midnight)'


def calendar_from_config(name: str, data: Any) -> Calendar:
    """Build a Calendar from its config mapping, or raise CalendarError.

    `{timezone: Europe/Amsterdam, hours: {mon-fri: "08:00-20:00"}, holidays: NL,
    extra_holidays: [2026-12-24]}`; `hours: 24x7`; several day keys
    (`mon-thu`, `fri`, `fri-mon`, `sat,sun`) each with one range or a list;
    `holidays: US-NY` or `{country: US, subdiv: NY}`.
    """
    if not isinstance(data, Mapping):
        raise CalendarError((), f"calendar {name!r} must be a mapping with timezone and hours")
    for key in data:
        if key not in _KEYS:
            raise CalendarError((key,), f"unknown key (known: {', '.join(_KEYS)})")
    for key in ("timezone", "hours"):
        if key not in data:
            raise CalendarError((), f"calendar {name!r} has no {key}")
    country, subdiv = _parse_holidays(data.get("holidays"))
    return Calendar(name, _parse_timezone(data["timezone"]), _parse_hours(data["hours"]),
                    country, subdiv, _parse_dates(data.get("extra_holidays") or []))


def _parse_timezone(value: Any) -> ZoneInfo:
    # "localtime" would be the host's zone: mailtriage never guesses a local zone.
    if isinstance(value, str) and value != "localtime":
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise CalendarError(("timezone",), f"{value!r} is not an IANA time zone (e.g. Europe/Amsterdam, UTC)")


def _parse_hours(value: Any) -> tuple[tuple[DailyWindow, ...], ...]:
    if isinstance(value, str) and value.strip().lower() in ("24x7", "24/7"):
        return ((DailyWindow(0, MINUTES_PER_DAY),),) * 7
    if not isinstance(value, Mapping) or not value:
        raise CalendarError(("hours",), f"{value!r} is neither 24x7 nor days mapped to times "
                            '(e.g. mon-fri: "08:00-20:00")')
    week: list[tuple[DailyWindow, ...]] = [()] * 7
    given_by: dict[int, Any] = {}
    for key, spec in value.items():
        windows = _parse_windows(key, spec)
        for day in _parse_days(key):
            if day in given_by:
                raise CalendarError(("hours", key), f"{DAY_NAMES[day]} is given twice "
                                    f"({given_by[day]!r} and {key!r})")
            given_by[day], week[day] = key, windows
    return tuple(week)


def _parse_days(key: Any) -> list[int]:
    """`mon`, `mon-fri`, `fri-mon` (wraps round the weekend), `sat,sun`."""
    days: list[int] = []
    for part in str(key).lower().replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if first not in DAY_NAMES or (dash and last not in DAY_NAMES):
            raise CalendarError(("hours", key), f"{key!r} is not a day or day range "
                                "(mon..sun, e.g. mon-fri or sat,sun)")
        start = DAY_NAMES.index(first)
        length = (DAY_NAMES.index(last) - start) % 7 + 1 if last else 1
        days += [(start + offset) % 7 for offset in range(length)]
    return days


def _parse_windows(key: Any, spec: Any) -> tuple[DailyWindow, ...]:
    """One range, a list of ranges, or `closed`/`[]` for no hours that day."""
    items = [spec] if isinstance(spec, str) else spec
    if spec is None or spec == "closed":
        items = []
    if not isinstance(items, list):
        raise CalendarError(("hours", key), f"{key}: {spec!r} is not a time range {_RANGE_HINT}")
    return tuple(sorted(_parse_window(key, item) for item in items))


def _parse_window(key: Any, item: Any) -> DailyWindow:
    start_text, sep, end_text = str(item).partition("-")
    start, end = _minute(start_text), _minute(end_text)
    if not isinstance(item, str) or not sep or start is None or end is None or start == MINUTES_PER_DAY:
        raise CalendarError(("hours", key), f"{key}: {item!r} is not a time range {_RANGE_HINT}")
    if start == end:
        raise CalendarError(("hours", key), f"{key}: {item!r} is empty (a whole day is 00:00-24:00)")
    return DailyWindow(start, end if end > start else end + MINUTES_PER_DAY)


def _minute(text: str) -> int | None:
    """`08:00` → 480; `24:00` → 1440; anything else → None."""
    hours, sep, minutes = text.strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and len(hours) <= 2):
        return None
    value = int(hours) * 60 + int(minutes)
    return value if int(minutes) < 60 and value <= MINUTES_PER_DAY else None


def _parse_holidays(value: Any) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, Mapping) and set(value) <= {"country", "subdiv"} and "country" in value:
        country, subdiv = value["country"], value.get("subdiv")
    elif isinstance(value, str) and not value.strip().endswith("-"):
        country, _, subdiv = value.partition("-")
    else:
        hint = " (Norway is written 'NO', in quotes)" if isinstance(value, bool) else ""
        raise CalendarError(("holidays",), f"{value!r} is not a country code like NL, US-NY "
                            f"or {{country: US, subdiv: NY}}{hint}")
    return str(country).strip().upper(), (str(subdiv).strip().upper() or None) if subdiv else None


def _parse_dates(value: Any) -> frozenset[date]:
    """ISO dates; YAML already turns an unquoted 2026-12-24 into a date."""
    items = value if isinstance(value, list) else [value]
    days = set()
    for index, item in enumerate(items):
        if isinstance(item, date) and not isinstance(item, datetime):
            days.add(item)
            continue
        try:
            days.add(date.fromisoformat(str(item).strip()))
        except ValueError:
            raise CalendarError(("extra_holidays", index),
                                f"{item!r} is not a date (YYYY-MM-DD)") from None
    return frozenset(days)
