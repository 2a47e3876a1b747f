"""Tickets as the CONTRACT's JSON and as lines for a terminal."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailtriage.store.schema import Ticket


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def ticket_json(ticket: Ticket, prefix: str, full: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ref": f"{prefix}-{ticket.id}",
        "subject": ticket.subject,
        "requester": ticket.requester,
        "status": ticket.status,
        "severity": ticket.severity,
        "impact": ticket.impact,
        "urgency": ticket.urgency,
        "tier": ticket.tier,
        "queue": ticket.queue,
        "tags": list(ticket.tags or []),
        "language": ticket.language,
        "assignee": ticket.assignee,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "first_response_due": iso(ticket.first_response_due),
        "first_responded_at": iso(ticket.first_responded_at),
        "resolution_due": iso(ticket.resolution_due),
        "resolved_at": iso(ticket.resolved_at),
        "sla_state": ticket.sla_state,
        "participants": sorted(p.email for p in ticket.participants),
        "merged_into": f"{prefix}-{ticket.merged_into}" if ticket.merged_into else None,
    }
    if full:
        data["messages"] = [_message(m) for m in ticket.messages]
        data["events"] = [{"at": iso(e.at), "type": e.type, "detail": e.detail} for e in ticket.events]
    return data


def _message(message: Any) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "direction": message.direction,
        "kind": message.kind,
        "threaded_via": message.threaded_via,
        "thread_evidence": message.thread_evidence,
        "from": message.from_addr,
        "to": list(message.to_addrs or []),
        "cc": list(message.cc_addrs or []),
        "date": iso(message.date),
        "subject": message.subject,
        "body_text": message.body_text,
        "attachments": list(message.attachments or []),
    }


def ticket_line(ticket: Ticket, prefix: str) -> str:
    subject = ticket.subject if len(ticket.subject) <= 60 else ticket.subject[:57] + "..."
    return (f"{prefix}-{ticket.id:<6} {ticket.status:<8} {ticket.severity} {ticket.tier} "
            f"{ticket.queue:<10} {ticket.sla_state:<8} {ticket.requester:<30} {subject}")


def ticket_text(data: dict[str, Any]) -> str:
    """`tickets show` for people: the facts, the conversation, the events."""
    lines = [f"{data['ref']}  {data['subject']}",
             f"  requester {data['requester']}  status {data['status']}  severity {data['severity']}  "
             f"tier {data['tier']}  queue {data['queue']}  tags {', '.join(data['tags']) or '-'}  "
             f"language {data.get('language') or '-'}",
             f"  created {data['created_at']}  first response due {data['first_response_due']}  "
             f"resolution due {data['resolution_due']}  sla {data['sla_state']}", ""]
    if data.get("merged_into"):
        lines[-1:-1] = [f"  merged into {data['merged_into']}: its mail goes there"]
    for message in data.get("messages", []):
        lines.append(f"--- {message['direction']} {message['kind']} {message['from']} {message['date'] or ''}")
        lines.append(f"    {message['subject']}")
        if message.get("threaded_via"):
            lines.append(f"    (threaded via {message['threaded_via']}: {message['thread_evidence']})")
        body = message["body_text"].strip().splitlines()
        lines.extend("    " + line for line in body[:40])
        if len(body) > 40:
            lines.append(f"    … {len(body) - 40} more lines")
        for attachment in message["attachments"]:
            lines.append(f"    [attachment {attachment['filename']} {attachment['content_type']} "
                         f"{attachment['size']} bytes]")
    lines.append("")
    lines.extend(f"{e['at']}  {e['type']:<16} {e['detail']}" for e in data.get("events", []))
    return "\n".join(lines)
