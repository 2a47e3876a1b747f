"""`mailtriage report sla`: compliance per severity, tier and queue (pure).

A ticket's first-response target is *met* when its first-response timer
stopped within the target, *missed* when it breached (noticed by the sweep,
or stopped late, or overdue now); a timer still running in time counts in
neither. The same for resolution, counted once the ticket was resolved.
Times are working time in the target's calendar (pauses excluded), as the
targets are. Renders as a table, JSON, or an HTML page with an inline-SVG
chart (no scripts, no external files).
"""

from __future__ import annotations

import html
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from mailtriage.sla.deadlines import breaches, key_prefix
from mailtriage.sla.durations import format_duration
from mailtriage.sla.timers import FIRST_RESPONSE, RESOLUTION, RUNNING, STOPPED, Calendars, Timer, Timers

__all__ = ["Facts", "Group", "build", "render_html", "render_table"]

GROUPINGS = (("severity", "by severity"), ("tier", "by tier"), ("queue", "by queue"))


@dataclass(frozen=True)
class Facts:
    """The columns of one ticket the report reads."""

    severity: str
    tier: str
    queue: str
    responded: bool
    resolved: bool
    sla_data: dict[str, Any]


@dataclass
class Group:
    name: str
    tickets: int = 0
    first_response_met: int = 0
    first_response_missed: int = 0
    resolution_met: int = 0
    resolution_missed: int = 0
    breaches: int = 0
    first_response_times: list[float] = field(default_factory=list)
    resolution_times: list[float] = field(default_factory=list)

    def add(self, facts: Facts, timers: Timers | None, calendars: Calendars, now: datetime) -> None:
        self.tickets += 1
        if timers is None:
            return
        self.breaches += breaches(timers) + _overdue(timers, calendars, now)
        first = _verdict(timers, FIRST_RESPONSE, facts.responded, calendars, now)
        if first is not None:
            self.first_response_met += first[0]
            self.first_response_missed += not first[0]
            if first[1] is not None:
                self.first_response_times.append(first[1])
        resolution = _verdict(timers, RESOLUTION, facts.resolved, calendars, now)
        if resolution is not None:
            self.resolution_met += resolution[0]
            self.resolution_missed += not resolution[0]
            if resolution[1] is not None:
                self.resolution_times.append(resolution[1])

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.name, "tickets": self.tickets,
                "first_response": _rate(self.first_response_met, self.first_response_missed),
                "resolution": _rate(self.resolution_met, self.resolution_missed),
                "breaches": self.breaches,
                "median_first_response_seconds": _median(self.first_response_times),
                "median_resolution_seconds": _median(self.resolution_times)}


def _verdict(timers: Timers, name: str, finished: bool, calendars: Calendars,
             now: datetime) -> tuple[bool, float | None] | None:
    """(met, working seconds used) for a finished timer, (False, None) for one overdue now, else None."""
    timer = timers.get(name)
    if timer is None:
        return None
    noticed = f"{name}.due" in timers.done
    if timer.state == STOPPED and finished:
        met = timer.outcome != "breached" and not noticed and timer.used_before <= timer.target
        return met, timer.used_before.total_seconds()
    if noticed or _is_overdue(timer, calendars, now):
        return False, None
    return None


def _is_overdue(timer: Timer, calendars: Calendars, now: datetime) -> bool:
    due = timer.when(1.0, calendars) if timer.state == RUNNING else None
    return due is not None and due <= now


def _overdue(timers: Timers, calendars: Calendars, now: datetime) -> int:
    """Breaches the sweep has not seen yet (it may not have run since)."""
    return sum(1 for c in timers.timers.values()
               if _is_overdue(c, calendars, now) and f"{key_prefix(c)}.due" not in timers.done)


def _rate(met: int, missed: int) -> dict[str, Any]:
    total = met + missed
    return {"met": met, "missed": missed, "rate": round(met / total, 4) if total else None}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def build(rows: Iterable[Facts], calendars: Calendars, now: datetime, since: datetime | None) -> dict[str, Any]:
    total = Group("all")
    groups: dict[str, dict[str, Group]] = {key: {} for key, _ in GROUPINGS}
    for facts in rows:
        timers = Timers.from_json(facts.sla_data or {})
        total.add(facts, timers, calendars, now)
        for key, _ in GROUPINGS:
            value = getattr(facts, key)
            groups[key].setdefault(value, Group(value)).add(facts, timers, calendars, now)
    return {"since": since.isoformat() if since else None, "as_of": now.isoformat(), "total": total.as_dict(),
            **{f"by_{key}": [groups[key][name].as_dict() for name in sorted(groups[key])] for key, _ in GROUPINGS}}


# -- rendering ---------------------------------------------------------------------

COLUMNS = ("group", "tickets", "first response met", "resolution met", "breaches",
           "median first response", "median resolution")


def _cells(row: dict[str, Any]) -> list[str]:
    return [row["group"], str(row["tickets"]), _rate_text(row["first_response"]), _rate_text(row["resolution"]),
            str(row["breaches"]), _duration_text(row["median_first_response_seconds"]),
            _duration_text(row["median_resolution_seconds"])]


def _rate_text(rate: dict[str, Any]) -> str:
    total = rate["met"] + rate["missed"]
    return f"{rate['met']}/{total} {rate['rate']:.0%}" if total else "-"


def _duration_text(seconds: float | None) -> str:
    return format_duration(timedelta(seconds=seconds)) if seconds is not None else "-"


def render_table(report: dict[str, Any]) -> str:
    since = report["since"] or "the first ticket"
    lines = [f"SLA compliance since {since} (as of {report['as_of']}); times are working time"]
    for key, title in GROUPINGS:
        rows = [_cells(r) for r in report[f"by_{key}"]] + [_cells(report["total"])]
        widths = [max(len(COLUMNS[i]), *(len(r[i]) for r in rows)) for i in range(len(COLUMNS))]
        lines += ["", title, "  " + "  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def render_html(report: dict[str, Any]) -> str:
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>mailtriage SLA compliance</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
             "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child,th:first-child"
             "{text-align:left}tr.total{font-weight:bold}</style></head><body>",
             "<h1>SLA compliance</h1>",
             f"<p>Since {esc(report['since'] or 'the first ticket')}, as of {esc(report['as_of'])}. "
             "Times are working time in each target's calendar.</p>",
             "<h2>Targets met by severity</h2>", chart_svg(report["by_severity"])]
    for key, title in GROUPINGS:
        parts.append(f"<h2>{esc(title.capitalize())}</h2><table><tr>"
                     + "".join(f"<th>{esc(c)}</th>" for c in COLUMNS) + "</tr>")
        for row in report[f"by_{key}"]:
            parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in _cells(row)) + "</tr>")
        parts.append('<tr class="total">' + "".join(f"<td>{esc(c)}</td>" for c in _cells(report["total"]))
                     + "</tr></table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def chart_svg(rows: list[dict[str, Any]]) -> str:
    """Grouped bars: share of first-response and resolution targets met, per group."""
    bar, gap, height, left, top = 28, 24, 200, 40, 10
    width = max(left + max(len(rows), 1) * (2 * bar + gap) + gap, 320)   # room for the legend
    series = (("first_response", "#4e79a7", "first response"), ("resolution", "#f28e2b", "resolution"))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 60}" '
           f'role="img" aria-label="SLA targets met per severity">']
    for pct in (0, 50, 100):
        y = top + height - height * pct / 100
        out.append(f'<line x1="{left}" y1="{y}" x2="{width}" y2="{y}" stroke="#ddd"/>'
                   f'<text x="{left - 4}" y="{y + 4}" font-size="11" text-anchor="end">{pct}%</text>')
    for index, row in enumerate(rows):
        x = left + gap + index * (2 * bar + gap)
        for offset, (key, colour, label) in enumerate(series):
            rate = row[key]["rate"]
            value = 0.0 if rate is None else rate
            h = height * value
            text = "no data" if rate is None else f"{rate:.0%}"
            out.append(f'<rect x="{x + offset * bar}" y="{top + height - h}" width="{bar - 2}" height="{h}" '
                       f'fill="{colour}"><title>{html.escape(row["group"])} {label}: {text}</title></rect>')
        out.append(f'<text x="{x + bar}" y="{top + height + 16}" font-size="12" text-anchor="middle">'
                   f'{html.escape(row["group"])}</text>')
    for offset, (_, colour, label) in enumerate(series):
        y, x = top + height + 32, left + offset * 140
        out.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{x + 16}" y="{y + 11}" font-size="12">{label} met</text>')
    out.append("</svg>")
    return "".join(out)
