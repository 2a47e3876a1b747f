"""`mailtriage sla explain REF`: how each deadline was computed (pure).

For every timer: its target and calendar, the stretches it ran (each in the
calendar in force then), the working windows that counted inside them, the
days that did not count (weekends, holidays by name), the pauses, and where
the deadline lands. The same data is printed as text or JSON.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Mapping

import holidays as pyholidays

from mailtriage.sla.calendar import DAY_NAMES, Calendar
from mailtriage.sla.deadlines import key_prefix, milestones
from mailtriage.sla.durations import format_duration
from mailtriage.sla.timers import LABELS, RUNNING, Calendars, Timer, Timers

__all__ = ["explain", "explain_text", "hours_text"]

MAX_SKIPPED = 40
DAY_LONG = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def explain(head: Mapping[str, Any], timers: Timers, calendars: Calendars, warn_at: float,
            now: datetime) -> dict[str, Any]:
    """`head` holds the ticket's ref, subject, status, tier and sla_state."""
    upcoming = {m.key: m.at for m in milestones(timers, warn_at, calendars, include_done=True)}
    return {**head, "severity": timers.severity, "as_of": now.isoformat(),
            "clocks": [_timer(timer, calendars, upcoming, now)      # the key `sla explain --json` has had
                       for timer in timers.timers.values()],
            "pauses": _pauses(timers), "notices_done": list(timers.done),
            "log": [{"at": at.isoformat(), "what": what} for at, what in timers.log]}


def _timer(timer: Timer, calendars: Calendars, upcoming: dict[str, datetime], now: datetime) -> dict[str, Any]:
    calendar = calendars[timer.calendar]
    used = timer.used(now, calendars)
    due = timer.when(1.0, calendars)
    prefix = key_prefix(timer)
    segments = []
    for segment in timer.segments:
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
        "name": timer.name, "label": LABELS[timer.name], "cycle": timer.cycle,
        "target": format_duration(timer.target), "calendar": timer.calendar,
        "calendar_hours": describe_calendar(calendar), "state": timer.state, "outcome": timer.outcome,
        "used": format_duration(used), "remaining": format_duration(timer.target - used),
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


def _pauses(timers: Timers) -> list[dict[str, str | None]]:
    """Gaps in the resolution timer (or the first one), with what the log says about them."""
    timer = timers.get("resolution") or next(iter(timers.timers.values()), None)
    if timer is None:
        return []
    found: list[dict[str, str | None]] = []
    for before, after in zip(timer.segments, timer.segments[1:]):
        if before.end is not None and after.start > before.end:
            found.append({"from": before.end.isoformat(), "to": after.start.isoformat(),
                          "why": _log_at(timers, before.end), "until": _log_at(timers, after.start)})
    last = timer.segments[-1] if timer.segments else None
    if last is not None and last.end is not None and timer.state != "stopped":
        found.append({"from": last.end.isoformat(), "to": None, "why": _log_at(timers, last.end), "until": None})
    return found


def _log_at(timers: Timers, at: datetime) -> str | None:
    texts = [what for when, what in timers.log if when == at]
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
    for timer in data["clocks"]:
        cycle = f" #{timer['cycle']}" if timer["name"] == "next_update" else ""
        lines.append(f"{timer['label']}{cycle}: target {timer['target']} of working time in calendar "
                     f"{timer['calendar']} ({timer['calendar_hours']})")
        state = timer["state"] + (f" ({timer['outcome']})" if timer["outcome"] else "")
        left = timer["remaining"]
        left = f"overdue by {left[1:]}" if left.startswith("-") else f"{left} left"
        lines.append(f"  {state}: {timer['used']} used, {left}")
        if timer["state"] == RUNNING:
            if timer["warn_at"]:
                lines.append(f"  warning at {timer['warn_at']}")
            lines.append(f"  due {timer['due_local']}  ({timer['due']})")
            if timer["twice_target_at"]:
                lines.append(f"  escalates again at {timer['twice_target_at']} (twice the target)")
        for segment in timer["segments"]:
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
    if data["log"]:
        # How the clocks got here: pauses, severity changes, merges (#merge) and splits (#split).
        lines += ["", "clock history:"] + [f"  {entry['at']}  {entry['what']}" for entry in data["log"]]
    return "\n".join(lines)
