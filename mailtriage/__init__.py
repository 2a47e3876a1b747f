"""mailtriage: an email-driven support-ticket daemon.

A message flows sources → parse → guards → thread → classify → tickets →
store → notify, with SLA timers beside it (see README.md and DESIGN.md).
"""

__version__ = "0.1.0"
