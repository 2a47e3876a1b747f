"""`mailtriage report sla`: compliance per severity, tier and queue (pure).

A ticket's first-response target is *met* when its first-response timer
stopped within the target, *missed* when it breached (noticed by the sweep,
or stopped late, or overdue now); a timer still running in time counts in
neither. The same for resolution, counted once the ticket was resolved.
Times are working time in the target's calendar (pauses excluded), as the
targets are. Level 0 beside it: how many tickets the acknowledgement
suggested knowledge-base articles for (event `kb-suggested`), and how many
of those were resolved with no agent reply (no public answer): deflected by
self-help. Renders as a table, JSON, or an HTML page with an inline-SVG
chart (no scripts, no external files): the Jinja2 template
`templates/report_sla.html`, autoescaped, which an admin may override.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable

from mailtriage.sla.deadlines import breaches, key_prefix
from mailtriage.sla.durations import format_duration
from mailtriage.sla.timers import FIRST_RESPONSE, RESOLUTION, RUNNING, STOPPED, Calendars, Timer, Timers

if TYPE_CHECKING:
    from mailtriage.notify.render import Templates

__all__ = ["Facts", "Group", "build", "page_context", "render_html", "render_table"]

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
    kb_suggested: bool = False        # the acknowledgement listed articles (event kb-suggested)
    agent_replied: bool = False       # an agent's public answer went to the customer


@dataclass
class Group:
    name: str
    tickets: int = 0
    first_response_met: int = 0
    first_response_missed: int = 0
    resolution_met: int = 0
    resolution_missed: int = 0
    breaches: int = 0
    history: int = 0                  # imported as history: not counted for or against the targets
    first_response_times: list[float] = field(default_factory=list)
    resolution_times: list[float] = field(default_factory=list)

    def add(self, facts: Facts, timers: Timers | None, calendars: Calendars, now: datetime) -> None:
        self.tickets += 1
        if timers is not None and timers.history is not None:
            self.history += 1
            return
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
                "breaches": self.breaches, "history": self.history,
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
    suggested = deflected = 0
    for facts in rows:
        suggested += facts.kb_suggested
        deflected += facts.kb_suggested and facts.resolved and not facts.agent_replied
        timers = Timers.from_json(facts.sla_data or {})
        total.add(facts, timers, calendars, now)
        for key, _ in GROUPINGS:
            value = getattr(facts, key)
            groups[key].setdefault(value, Group(value)).add(facts, timers, calendars, now)
    return {"since": since.isoformat() if since else None, "as_of": now.isoformat(), "total": total.as_dict(),
            **{f"by_{key}": [groups[key][name].as_dict() for name in sorted(groups[key])] for key, _ in GROUPINGS},
            "knowledge_base": {"suggested": suggested, "resolved_without_agent_reply": deflected,
                               "rate": round(deflected / suggested, 4) if suggested else None}}


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
    lines += ["", f"knowledge base (level 0): {_kb_text(report['knowledge_base'])}"]
    return "\n".join(lines)


def _kb_text(kb: dict[str, Any]) -> str:
    if not kb["suggested"]:
        return "no ticket got article suggestions"
    return (f"{kb['suggested']} ticket(s) got article suggestions; {kb['resolved_without_agent_reply']} of them "
            f"({kb['rate']:.0%}) were resolved with no agent reply")


def render_html(report: dict[str, Any], templates: Templates) -> str:
    """The page `templates/report_sla.html` makes of the report (autoescaped:
    queue names are the admin's and the rules' text)."""
    return templates.page("report_sla", page_context(report))


def page_context(report: dict[str, Any]) -> dict[str, Any]:
    """What the page shows: every cell as text, the chart as geometry."""
    sections = [{"title": title.capitalize(), "rows": [_cells(row) for row in report[f"by_{key}"]],
                 "total": _cells(report["total"])} for key, title in GROUPINGS]
    return {"since": report["since"] or "the first ticket", "as_of": report["as_of"], "columns": COLUMNS,
            "sections": sections, "chart": chart(report["by_severity"]),
            "knowledge_base": _kb_text(report["knowledge_base"])}


SERIES = (("first_response", "#4e79a7", "first response"), ("resolution", "#f28e2b", "resolution"))


def chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Grouped bars: share of first-response and resolution targets met, per
    group. Only the geometry; the page draws it as inline SVG."""
    bar, gap, height, left, top = 28, 24, 200, 40, 10
    width = max(left + max(len(rows), 1) * (2 * bar + gap) + gap, 320)   # room for the legend
    groups = []
    for index, row in enumerate(rows):
        x = left + gap + index * (2 * bar + gap)
        bars = []
        for offset, (key, colour, label) in enumerate(SERIES):
            rate = row[key]["rate"]
            h = height * (0.0 if rate is None else rate)
            text = "no data" if rate is None else f"{rate:.0%}"
            bars.append({"x": x + offset * bar, "y": top + height - h, "width": bar - 2, "height": h,
                         "colour": colour, "title": f"{row['group']} {label}: {text}"})
        groups.append({"name": row["group"], "x": x + bar, "bars": bars})
    return {"width": width, "height": height + 60, "left": left, "base": top + height,
            "grid": [{"y": top + height - height * pct / 100, "label": f"{pct}%"} for pct in (0, 50, 100)],
            "groups": groups,
            "legend": [{"x": left + offset * 140, "colour": colour, "label": f"{label} met"}
                       for offset, (_, colour, label) in enumerate(SERIES)]}
