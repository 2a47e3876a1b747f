"""`mailtriage explain FILE.eml`: what the spine would do with a message, storing nothing.

    limits ─► parse ─► dedupe ─► guards ─► authenticate ─► thread (with its evidence)
           ─► classify ─► the ticket step's Change ─► the mail it would send ─► the delivery path

The same functions as `spine.flow` in the same order, on a session that only
reads and is rolled back; the ticket step is pure, so what it decides can be
shown without being written.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from mailtriage.app import App
from mailtriage.classify import classify
from mailtriage.mail import guards, limits, received
from mailtriage.mail.parse import parse
from mailtriage.model import Status, ticket_ref
from mailtriage.pipeline.spine import LOOP_REASONS
from mailtriage.pipeline.tickets import load_facts, target
from mailtriage.store import hygiene, queries
from mailtriage.store.records import record_of
from mailtriage.thread import decide, evidence
from mailtriage.tickets import agents, answers, customers
from mailtriage.tickets.change import Incoming
from mailtriage.tickets.transitions import mailbox_for, reply_token


def explain(app: App, raw: bytes, now: datetime) -> dict[str, Any]:
    settings = app.settings
    report: dict[str, Any] = {"limits": None, "duplicate": None, "automatic": None, "thread": None,
                              "agent": None, "verdict": None, "outgoing": [], "delivery_path": []}
    breach = limits.check_raw(raw, settings.limits)
    mail = parse(raw) if breach is None else None
    breach = breach or (limits.check_parsed(mail, settings.limits) if mail is not None else None)
    if breach is not None or mail is None:
        report["limits"] = {"reason": breach.reason, "detail": breach.detail} if breach else None
        return report
    report["delivery_path"] = [{"from": hop.from_, "by": hop.by, "with": hop.with_, "date":
                                hop.date.isoformat() if hop.date else None} for hop in received.delivery_path(mail)]
    reasons = guards.automatic_reasons(mail, settings.own_addresses, settings.loop_id, settings.limits.max_hops)
    report["automatic"] = reasons[0] if reasons else None
    report["automatic_all"] = list(reasons)
    with app.store.session() as session:
        try:
            return _stored_side(app, session, raw, mail, now, report)
        finally:
            session.rollback()


def _stored_side(app: App, session: Any, raw: bytes, mail: Any, now: datetime,
                 report: dict[str, Any]) -> dict[str, Any]:
    settings, config, prefix = app.settings, app.config, app.settings.ticket_prefix
    key = queries.content_key(mail)
    duplicate = queries.find_duplicate(session, mail, key)
    if duplicate is not None:
        report["duplicate"] = ticket_ref(prefix, duplicate.ticket_id)
        return report
    automatic = report["automatic"]
    if automatic in LOOP_REASONS or hygiene.outbox_row(session, (mail.message_id,)) is not None:
        report["automatic"] = automatic or "own-message-id"
        report["outcome"] = "ignored:loop"
        return report
    if automatic == "bounce":
        report["outcome"] = "ignored:bounce"
        return report
    agent = agents.authenticate(mail, settings)
    report["agent"] = {"address": mail.from_addr, "is_agent_address": agent.agent is not None,
                       "trusted": agent.trusted, "why": agent.reason}
    links = queries.thread_facts(session, mail, prefix, agent.trusted, reply_token(mail, settings))
    threading = decide(links)
    ticket, merge = target(session, threading, links)
    report["thread"] = {"ticket": ticket_ref(prefix, ticket.id) if ticket is not None else None,
                        "via": threading.via if ticket is not None else "new",
                        "evidence": evidence(threading, links, prefix),
                        "merges": [ticket_ref(prefix, t) for t in merge]}
    incoming = Incoming(mail, 0, "explain", key, now, automatic, (), True, agent,
                        threaded=(threading.via, report["thread"]["evidence"]))
    incoming = replace(incoming, note=customers.to_comment_address(incoming, config))
    window = settings.auto_reply.per_sender_window
    requester = customers.requester_of(incoming, config)
    if agent.trusted and not automatic and ticket is not None:
        change = answers.handle(incoming, record_of(ticket), load_facts(session, ticket.id, incoming, window,
                                                                       answer=True), config)
        report["outcome"] = "reply (agent)"
    elif ticket is not None and ticket.status != Status.CLOSED.value:
        change = customers.reply(incoming, record_of(ticket), load_facts(session, ticket.id, incoming, window,
                                                                         requester=requester), config)
        report["outcome"] = "reply"
    else:
        verdict = classify(mail, config.rules, settings.priority_matrix)
        report["verdict"] = verdict.as_dict()
        mailbox = mailbox_for(mail, settings, ())
        record = customers.new_ticket(incoming, verdict, mailbox, config)
        change = customers.open_ticket(incoming, record, verdict, mailbox,
                                       load_facts(session, None, incoming, window, requester=requester), config,
                                       follows=ticket.id if ticket is not None else None,
                                       refused_tag=threading.refused_tag)
        report["outcome"] = "new"
    report["events"] = [{"type": e.type, "detail": e.detail} for e in change.events]
    report["outgoing"] = [{"kind": m.kind, "to": list(m.mail.to + m.mail.cc)} for m in change.mail]
    return report


def explain_text(report: dict[str, Any]) -> str:
    """The report for people, one fact a line."""
    lines = []
    if report["limits"]:
        return f"over a limit: {report['limits']['reason']} ({report['limits']['detail']}): quarantined"
    if report["duplicate"]:
        return f"duplicate of a message of {report['duplicate']}: nothing would change"
    lines.append(f"automatic: {report['automatic'] or 'no (human mail)'}")
    if report.get("agent"):
        agent = report["agent"]
        lines.append(f"agent: {'believed' if agent['trusted'] else 'not an agent' if not agent['is_agent_address'] else 'NOT believed'}"
                     f" ({agent['why']})")
    if report.get("thread"):
        thread = report["thread"]
        lines.append(f"thread: {thread['ticket'] or 'new ticket'} via {thread['via']}: {thread['evidence']}")
    if report.get("verdict"):
        verdict = report["verdict"]
        lines.append(f"rules: {verdict['severity']} {verdict['tier']} queue={verdict['queue']} "
                     f"rules: {', '.join(verdict['matched_rules']) or 'none (default)'}")
        lines.append(f"priority: {verdict['priority']}")
    lines.append(f"outcome: {report.get('outcome', '-')}")
    lines.extend(f"would send: {m['kind']} to {', '.join(m['to'])}" for m in report["outgoing"])
    lines.extend(f"event: {e['type']}: {e['detail']}" for e in report.get("events", []))
    lines.extend(f"hop: from {h['from'] or '?'} by {h['by'] or '?'} at {h['date'] or '?'}" for h in report["delivery_path"])
    return "\n".join(lines)
