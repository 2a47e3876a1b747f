"""SLA timers, beside the message flow: business calendars and durations.

Pure arithmetic on values; deadlines and the sweep build on these.
"""

from mailtriage.sla.calendar import Calendar, calendar_from_config
from mailtriage.sla.durations import format_duration, parse_duration, parse_percent

__all__ = [
    "Calendar",
    "calendar_from_config",
    "format_duration",
    "parse_duration",
    "parse_percent",
]
