"""History: mail taken in from before mailtriage was there (pure).

`mailtriage import` without `--acknowledge`, and the daemon's first look at
an IMAP folder for mail older than `history_age`, take mail in as history:

- the ticket and its messages keep the mail's own time (`Date:`, else when
  it was delivered, never later than now), so `tickets list` and the
  reports show when things happened;
- nothing is sent to anybody (no acknowledgement, no notice, no answer);
- the SLA timers run from the mail's time for the record, and the sweep
  records the milestones as events without a mail or an escalation;
- live mail from the customer on such a ticket revives it: it is
  acknowledged as a new ticket would be, and its timers start then.
"""

from __future__ import annotations

from datetime import datetime

from mailtriage.model import ParsedMail


def history_time(mail: ParsedMail, delivered: datetime | None, now: datetime) -> datetime:
    """When a mail taken in as history happened: its `Date:`, else its
    delivery time; a missing, unreadable or future date falls back, and
    nothing is ever later than `now`."""
    for candidate in (mail.date, delivered):
        if candidate is not None and candidate.tzinfo is not None and candidate <= now:
            return candidate
    return now
