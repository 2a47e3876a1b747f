"""`mailtriage sla explain REF`: how each deadline was computed (pure).

For every clock: its target and calendar, the stretches it ran (each in the
calendar in force then), the working windows that counted inside them, the
days that did not count (weekends, holidays by name), the pauses, and where
the deadline lands. The same data is printed as text or JSON.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Mapping

import holidays as pyholidays

from mailtriage.sla.calendar import DAY_NAMES, Calendar
from mailtriage.sla.clocks import LABELS, RUNNING, Calendars, Clock, Clocks
from mailtriage.sla.deadlines import key_prefix, milestones
from mailtriage.sla.durations import format_duration

__all__ = ["explain", "explain_text", "hours_text"]

MAX_SKIPPED = 40
DAY_LONG = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def explain(head: Mapping[str, Any], clocks: Clocks, calendars: Calendars, warn_at: float,
            now: datetime) -> dict[str, Any]:
    """`head` holds the ticket's ref, subject, status, tier and sla_state."""
    upcoming = {m.key: m.at for m in milestones(clocks, warn_at, calendars, include_done=True)}
    return {**head, "severity": clocks.severity, "as_of": now.isoformat(),
            "clocks": [_clock(clock, calendars, upcoming, now) for clock in clocks.clocks.values()],
            "pauses": _pauses(clocks), "notices_done": list(clocks.done),
            "log": [{"at": at.isoformat(), "what": what} for at, what in clocks.log]}


def _clock(clock: Clock, calendars: Calendars, upcoming: dict[str, datetime], now: datetime) -> dict[str, Any]:
    calendar = calendars[clock.calendar]
    used = clock.used(now, calendars)
    due = clock.when(1.0, calendars)
    prefix = key_prefix(clock)
    segments = []
    for segment in clock.segments:
        seg_calendar = calendars[segment.calendar]
        end = segment.end if segment.end is not None else due
        running = segment.end is None
        segments.append({
            "from": segment.start.isoformat(), "to": end.isoformat() if end else None,
            "running": running, "calendar": segment.calendar,
            "worked": format_duration(segment.worked if not running else seg_calendar.between(segment.start, now)),
            "windows": _windows(seg_calendar, segment.start, end) if end else [],
            "skipped": _skipped(seg_calendar, segment.start, end) if end else [],
        })
    return {
        "name": clock.name, "label": LABELS[clock.name], "cycle": clock.cycle,
        "target": format_duration(clock.target), "calendar": clock.calendar,
        "calendar_hours": describe_calendar(calendar), "state": clock.state, "outcome": clock.outcome,
        "used": format_duration(used), "remaining": format_duration(clock.target - used),
        "warn_at": _local(upcoming.get(f"{prefix}.warn"), calendar),
        "due": due.isoformat() if due else None, "due_local": _local(due, calendar),
        "twice_target_at": _local(upcoming.get(f"{prefix}.again"), calendar),
        "segments": segments,
    }


def _windows(calendar: Calendar, start: datetime, end: datetime) -> list[dict[str, str]]:
    found = []
    for opening, close in calendar.windows(start, end):
        local_open, local_close = opening.astimezone(calendar.timezone), close.astimezone(calendar.timezone)
        found.append({"from": local_open.strftime("%a %Y-%m-%d %H:%M %Z"),
                      "to": local_close.strftime("%H:%M %Z") if local_close.date() == local_open.date()
                      else local_close.strftime("%a %Y-%m-%d %H:%M %Z"),
                      "counted": format_duration(close - opening)})
    return found


def _skipped(calendar: Calendar, start: datetime, end: datetime) -> list[dict[str, str]]:
    """Local days within [start, end) that gave no working time, and why."""
    first = start.astimezone(calendar.timezone).date()
    last = end.astimezone(calendar.timezone).date()
    found: list[dict[str, str]] = []
    day = first
    while day <= last and len(found) < MAX_SKIPPED:
        why = _why_closed(calendar, day)
        if why:
            found.append({"date": day.isoformat(), "day": DAY_LONG[day.weekday()], "why": why})
        day += timedelta(days=1)
    return found


def _why_closed(calendar: Calendar, day: date) -> str | None:
    if not calendar.weekly[day.weekday()]:
        return "no working hours"
    if day in calendar.extra_holidays:
        return "holiday (extra_holidays)"
    if calendar.is_holiday(day):
        assert calendar.country is not None
        name = pyholidays.country_holidays(calendar.country, subdiv=calendar.subdiv, years=day.year).get(day)
        return f"holiday: {name}" if name else "holiday"
    return None


def _pauses(clocks: Clocks) -> list[dict[str, str | None]]:
    """Gaps in the resolution clock (or the first one), with what the log says about them."""
    clock = clocks.get("resolution") or next(iter(clocks.clocks.values()), None)
    if clock is None:
        return []
    found: list[dict[str, str | None]] = []
    for before, after in zip(clock.segments, clock.segments[1:]):
        if before.end is not None and after.start > before.end:
            found.append({"from": before.end.isoformat(), "to": after.start.isoformat(),
                          "why": _log_at(clocks, before.end), "until": _log_at(clocks, after.start)})
    last = clock.segments[-1] if clock.segments else None
    if last is not None and last.end is not None and clock.state != "stopped":
        found.append({"from": last.end.isoformat(), "to": None, "why": _log_at(clocks, last.end), "until": None})
    return found


def _log_at(clocks: Clocks, at: datetime) -> str | None:
    texts = [what for when, what in clocks.log if when == at]
    return "; ".join(texts) or None


def _local(at: datetime | None, calendar: Calendar) -> str | None:
    return at.astimezone(calendar.timezone).strftime("%a %Y-%m-%d %H:%M %Z") if at else None


def describe_calendar(calendar: Calendar) -> str:
    parts = [calendar.timezone.key, hours_text(calendar)]
    if calendar.country:
        parts.append(f"holidays {calendar.country}{'-' + calendar.subdiv if calendar.subdiv else ''}")
    if calendar.extra_holidays:
        parts.append(f"{len(calendar.extra_holidays)} extra holiday(s)")
    return "; ".join(parts)


def hours_text(calendar: Calendar) -> str:
    """`mon-fri 08:00-20:00`, `24x7`: the weekly hours, days with equal hours grouped."""
    week = calendar.weekly
    if all(len(day) == 1 and day[0].start == 0 and day[0].end == 1440 for day in week):
        return "24x7"
    runs: list[tuple[int, int]] = []
    for index in range(7):
        if runs and week[index] == week[runs[-1][0]]:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    texts = []
    for first, last in runs:
        if not week[first]:
            continue
        days = DAY_NAMES[first] if first == last else f"{DAY_NAMES[first]}-{DAY_NAMES[last]}"
        texts.append(f"{days} {', '.join(str(w) for w in week[first])}")
    return "; ".join(texts)


def explain_text(data: Mapping[str, Any]) -> str:
    lines = [f"{data['ref']}  {data['subject']}",
             f"  severity {data['severity']}, status {data['status']}, tier {data['tier']}, "
             f"sla {data['sla_state']}; as of {data['as_of']}", ""]
    for clock in data["clocks"]:
        cycle = f" #{clock['cycle']}" if clock["name"] == "next_update" else ""
        lines.append(f"{clock['label']}{cycle}: target {clock['target']} of working time in calendar "
                     f"{clock['calendar']} ({clock['calendar_hours']})")
        state = clock["state"] + (f" ({clock['outcome']})" if clock["outcome"] else "")
        left = clock["remaining"]
        left = f"overdue by {left[1:]}" if left.startswith("-") else f"{left} left"
        lines.append(f"  {state}: {clock['used']} used, {left}")
        if clock["state"] == RUNNING:
            if clock["warn_at"]:
                lines.append(f"  warning at {clock['warn_at']}")
            lines.append(f"  due {clock['due_local']}  ({clock['due']})")
            if clock["twice_target_at"]:
                lines.append(f"  escalates again at {clock['twice_target_at']} (twice the target)")
        for segment in clock["segments"]:
            if segment["running"]:
                lines.append(f"  running since {segment['from']} in {segment['calendar']}: {segment['worked']} "
                             f"so far; the target is used up after these windows:")
            else:
                lines.append(f"  ran {segment['from']} → {segment['to']} in {segment['calendar']}: "
                             f"{segment['worked']} counted")
            for window in segment["windows"]:
                lines.append(f"    counted  {window['from']} - {window['to']}  {window['counted']}")
            for day in segment["skipped"]:
                lines.append(f"    skipped  {day['day'][:3]} {day['date']}  {day['why']}")
        lines.append("")
    if data["pauses"]:
        lines.append("pauses:")
        for pause in data["pauses"]:
            lines.append(f"  {pause['from']} → {pause['to'] or 'now'}  {pause['why'] or ''}"
                         + (f" … {pause['until']}" if pause["until"] else ""))
        lines.append("")
    lines.append(f"notices sent: {', '.join(data['notices_done']) or 'none'}")
    return "\n".join(lines)
