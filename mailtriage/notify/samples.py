"""Sample data for every template: `config check` and SIGHUP render each of
the admin's templates with it, so that a template that parses but cannot
render (`{{ ticket.requestor }}`) is a `FILE:LINE` problem before any mail
needs it, not a quarantined message after.

    load_config ─► Templates.check (syntax) ─► **samples.problems** (render) ─► ConfigError

The contexts are not written out here: the real builders make them from a
sample ticket (the acknowledgement, the relayed answer, the agents' notice,
the command error, the SLA warning and escalation, the report page, the
resolution notice, whose answer is long enough to be cut), so a
template is checked against exactly the names it will get at run time. The
mail builders are pure and call `templates.render(name, context)`; a
`_Recorder` in the place of the templates keeps that context.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any

from mailtriage.config.loaded import Config
from mailtriage.config.values import NOTICE_REASONS
from mailtriage.errors import Problem
from mailtriage.mail.parse import parse
from mailtriage.model import Attachment, ParsedMail, Status, TicketRecord
from mailtriage.health.state import State
from mailtriage.notify import agentmail, alertmail, customermail
from mailtriage.notify.render import PAGE_SUFFIX, SUFFIX, Rendered, Templates
from mailtriage.notify.views import sender
from mailtriage.sla import digest, lifecycle, notices, report
from mailtriage.sla.calendar import calendar_from_config

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
CUSTOMER = "anna@customer.example"
MAIL = b"""\
From: Anna Schmidt <anna@customer.example>
To: support@example.test
Cc: Dan <dan@customer.example>
Subject: VPN is down for the whole sales team
Date: Mon, 02 Mar 2026 09:00:00 +0000
Message-ID: <sample-1@customer.example>

Nobody in sales can connect since 8:00.

Anna
"""


class _Recorder(Templates):
    """Stands where the templates go: keeps each context a builder hands over."""

    def __init__(self) -> None:
        super().__init__([])
        self.contexts: dict[str, dict[str, Any]] = {}

    def render(self, name: str, context: dict[str, Any], languages: tuple[str | None, ...] = ()) -> Rendered:
        self.contexts[name + SUFFIX] = context
        return Rendered("sample", "sample")


def problems(templates: Templates, config: Config) -> list[Problem]:
    """Each of the admin's templates that raises with sample data, at the
    template line that raised. Built-in templates are ours (tests render them)."""
    contexts = sample_contexts(config)
    found = []
    for name in templates.admin_files():
        context = contexts.get(PurePosixPath(name).name)     # nl/acknowledgement.txt: as acknowledgement.txt
        if context is None:
            continue                                          # not one we render (an include, a macro file)
        try:
            templates.render_file(name, context)
        except Exception as exc:  # noqa: BLE001 - whatever an admin's template raises is its problem
            file, line = templates.failure_at(exc, name)
            found.append(Problem(file, line, f"template {name} cannot be rendered: {exc.__class__.__name__}: "
                                             f"{exc} (rendering it with sample data)"))
    return found


def sample_contexts(config: Config) -> dict[str, dict[str, Any]]:
    """What each template (by file name) sees, for a sample ticket."""
    settings, mail = config.settings, parse(MAIL)
    ticket = _ticket(config)
    recorder = _Recorder()
    mailbox = settings.mailboxes[0] if settings.mailboxes else None
    people = ((CUSTOMER, "requester"), ("dan@customer.example", "cc"))
    customermail.acknowledgement(settings, recorder, ticket, mail, CUSTOMER, mailbox)
    customermail.answer(settings, recorder, ticket, "Alice", "We restarted the VPN gateway; please try again.",
                        customers=(CUSTOMER,), participants=people, seen=(mail.message_id,),
                        theirs=(mail.message_id,))
    customermail.resolution(settings, recorder, ticket, "We restarted the VPN gateway; please try again.\n" * 80,
                            customers=(CUSTOMER,), participants=people, seen=(mail.message_id,),
                            theirs=(mail.message_id,))
    agentmail.notice(settings.model_copy(update={"agent_notices": list(NOTICE_REASONS)}), recorder, ticket,
                     "new", agentmail.Thread(people, (mail.message_id,)), to=("agent@sample.invalid",),
                     written=_written(mail), warning="a sample warning")
    agentmail.command_error(settings, recorder, ticket, "alice@sample.invalid", "Alice",
                            (("#sevrity S1", "unknown command"),), ("#status open",), subject=ticket.subject,
                            in_reply_to=mail.message_id)
    return {**recorder.contexts, **_sla_contexts(config, ticket), **_alert_contexts(settings)}


def _alert_contexts(settings: Any) -> dict[str, dict[str, Any]]:
    """A mailbox that failed at 09:00 and was alerted about at 09:05."""
    failing = State("mailbox:support", last_success_at=NOW - timedelta(minutes=1)).failed(
        "ConnectionRefusedError: [Errno 111] Connection refused", NOW)
    alerted = failing.alerted("alert", NOW + timedelta(minutes=5))
    from_name = sender(settings, None)[1]
    return {"alert" + SUFFIX: alertmail.context(failing, NOW + timedelta(minutes=5), from_name),
            "alert_recovered" + SUFFIX: alertmail.context(alerted.succeeded(NOW + timedelta(minutes=20)),
                                                          NOW + timedelta(minutes=20), from_name)}


def _ticket(config: Config) -> TicketRecord:
    settings = config.settings
    ticket = TicketRecord(
        id=42, subject="VPN is down for the whole sales team", requester=CUSTOMER, status=Status.OPEN.value,
        severity="S2", tier="L1", queue="support", tags=("vpn", "outage"), assignee="alice@sample.invalid",
        mailbox=settings.mailboxes[0].name if settings.mailboxes else None, created_at=NOW, updated_at=NOW,
        language="nl")
    return lifecycle.start(ticket, NOW, settings.sla, config.calendars)


def _written(mail: ParsedMail) -> agentmail.Written:
    # Two files, one over agent_notice_attachments: the template's listing and its "not attached" line.
    files = (Attachment("vpn.log", "text/plain", 2048, payload=b"x" * 2048),
             Attachment("capture.pcap", "application/vnd.tcpdump.pcap", 2 ** 40))
    return agentmail.Written(f"{mail.from_name} <{mail.from_addr}>", mail.body_text.strip(), mail.message_id,
                             trimmed=True, files=files)


def _sla_contexts(config: Config, ticket: TicketRecord) -> dict[str, dict[str, Any]]:
    """The SLA notices and the report page, half an hour after the sample ticket opened."""
    now = NOW + timedelta(minutes=30)
    timers = lifecycle.load(ticket, config.settings.sla, config.calendars)
    first = next(iter(timers.timers.values()))
    history = [{"at": NOW.isoformat(timespec="minutes"), "type": "created", "detail": f"from {CUSTOMER}"}]
    escalated = replace(ticket, tier="L2")
    row = report.Facts(ticket.severity, ticket.tier, ticket.queue, responded=False, resolved=False,
                       sla_data=ticket.sla_data)
    return {
        "warning" + SUFFIX: notices.warning_context(config, ticket, timers, first, now),
        "escalation" + SUFFIX: notices.escalation_context(
            config, escalated, timers, now, reason="first response target missed", from_tier="L1",
            history=history, excerpt=["Nobody in sales can connect since 8:00."]),
        "report_sla" + PAGE_SUFFIX: report.page_context(report.build([row], config.calendars, now, since=None)),
        "digest" + SUFFIX: _digest_context(config, ticket, now),
    }


def _digest_context(config: Config, ticket: TicketRecord, now: datetime) -> dict[str, Any]:
    """The digest with the sample ticket due today and breached yesterday."""
    name = config.settings.digest.calendar if config.settings.digest else next(iter(config.calendars), "")
    calendar = config.calendars.get(name) or calendar_from_config("sample", {"timezone": "UTC", "hours": "24x7"})
    line = digest.Line(ref=f"{config.settings.ticket_prefix}-{ticket.id}", subject=ticket.subject,
                       severity=ticket.severity, tier=ticket.tier, target="resolution", at="Mon 2026-03-02 11:00 CET")
    facts = digest.Facts(day=now.date(), since=now.date() - timedelta(days=3),
                         open={"L1": {"S1": 0, "S2": 1, "S3": 0, "S4": 0}}, due_today=[line], breached=[line])
    return digest.context(config, calendar, facts, now)
