"""What templates see (notify/views.py, pure): local human times, greeting names (issue 17, item 20)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from mailtriage.config.values import Settings
from mailtriage.model import TicketRecord
from mailtriage.notify.views import greeting_name, long_time, short_time, ticket_view, ticket_zone

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
SUMMER = datetime(2026, 7, 6, 9, 0, tzinfo=timezone.utc)
SETTINGS = Settings.model_validate({
    "calendars": {"office": {"timezone": "Europe/Amsterdam", "hours": {"mon-fri": "08:00-20:00"}},
                  "always": {"timezone": "UTC", "hours": "24x7"}},
    "sla": {"targets": {"S1": {"first_response": "15m", "resolution": "1h", "calendar": "always"},
                        "S3": {"first_response": "1h", "resolution": "3h", "calendar": "office"}}}})
TICKET = TicketRecord(id=7, subject="Printer", requester="carla@customer.example", status="new", severity="S3",
                      tier="L1", queue="support", tags=(), assignee=None, mailbox=None, created_at=T0,
                      updated_at=T0, first_response_due=T0.replace(hour=10), resolution_due=T0.replace(hour=12))


def test_times_are_in_the_zone_of_the_tickets_sla_calendar():
    zone = ticket_zone(SETTINGS, TICKET)
    assert long_time(TICKET.first_response_due, zone) == "Monday 2 March 2026, 11:00 CET"
    assert long_time(SUMMER, zone) == "Monday 6 July 2026, 11:00 CEST"
    assert short_time(TICKET.first_response_due, zone) == "Mon 2026-03-02 11:00 CET"
    s1 = replace(TICKET, severity="S1")
    assert long_time(T0, ticket_zone(SETTINGS, s1)) == "Monday 2 March 2026, 09:00 UTC"
    assert ticket_zone(SETTINGS, replace(TICKET, severity="S4")) == timezone.utc      # no target: UTC


def test_a_deadline_behind_the_ticket_is_not_shown_as_due():
    view = ticket_view(TICKET, SETTINGS)
    assert (view.first_response_due, view.resolution_due) == ("Mon 2026-03-02 11:00 CET", "Mon 2026-03-02 13:00 CET")
    answered = ticket_view(replace(TICKET, first_responded_at=T0), SETTINGS)
    assert answered.first_response_due is None and answered.resolution_due == "Mon 2026-03-02 13:00 CET"
    assert ticket_view(replace(TICKET, resolved_at=T0), SETTINGS).resolution_due is None


@pytest.mark.parametrize("display_name, greeting", [
    ("Jansen, Pieter", "Pieter Jansen"),                      # Outlook/Exchange: last, first
    ('"Jansen, Pieter"', "Pieter Jansen"),
    ("van der Berg, Anna", "Anna van der Berg"),
    ("Jansen, Pieter (ACME IT)", "Pieter Jansen"),            # the directory's note
    ("Doe, Jane [External]", "Jane Doe"),
    ("Carla Customer", "Carla Customer"),
    ("ACME, Inc.", "ACME, Inc."),                             # a company, not last-first
    ("Smith, John, Jr.", "Smith, John, Jr."),                 # not sure: as written
    ("carla@customer.example", ""),                           # an address is no name
    ("", ""),
    ("  Anna   ", "Anna"),
])
def test_greeting_names(display_name, greeting):
    assert greeting_name(display_name) == greeting
