"""A delivery failure, at the store: a `bounce` event on the ticket whose mail
failed, and its hard-bounced recipients suppressed.

    guards: "bounce" ─► mail.bounces.read (pure) ─► **record** (which of our mails, who failed)

Never a ticket, never a reply. A bounce about mail we never sent
(backscatter) changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from mailtriage.app import App
from mailtriage.config.values import Settings, agent_for
from mailtriage.mail import bounces
from mailtriage.model import Disposition, Outcome, ParsedMail, ticket_ref
from mailtriage.store import hygiene, queries
from mailtriage.store.schema import RawMessage

log = logging.getLogger(__name__)


def record(app: App, session: Session, raw: RawMessage, mail: ParsedMail, now: datetime) -> Outcome:
    """The bounce's event on its ticket, and no more mail to the addresses that failed for good."""
    report = bounces.read(raw.data, mail)
    row = hygiene.outbox_row(session, report.original_ids)
    if row is None or row.ticket_id is None:
        return Outcome(Disposition.IGNORED, "bounce", None, raw.id)
    prefix = app.settings.ticket_prefix
    recipients = {address.lower() for address in row.recipients}
    hard = sorted(report.permanent & recipients)
    for address in hard:
        if _configured(address, app.settings):   # an agent or team address: fix the config, do not go quiet
            log.error("hard bounce for %s, a configured address: not suppressed", address)
            continue
        hygiene.suppress(session, address, f"hard bounce of {row.message_id} ({row.kind}, "
                         f"{ticket_ref(prefix, row.ticket_id)})", now, raw.id)
    detail = _detail(row.kind, row.message_id, hard, sorted(report.temporary & recipients),
                     sorted((report.permanent | report.temporary) - recipients))
    queries.add_event(session, row.ticket_id, now, "bounce", detail,
                      {"message_id": row.message_id, "hard": hard, "bounce_raw_id": raw.id})
    raw.ticket_id = row.ticket_id
    return Outcome(Disposition.IGNORED, "bounce", ticket_ref(prefix, row.ticket_id), raw.id)


def _detail(kind: str, message_id: str, hard: list[str], soft: list[str], other: list[str]) -> str:
    parts = [f"{kind} {message_id} bounced"]
    if hard:
        parts.append(f"permanent failure for {', '.join(hard)} (no more mail to them)")
    if soft:
        parts.append(f"delayed for {', '.join(soft)}")
    if other:
        parts.append(f"the report also names {', '.join(other)}")
    if not (hard or soft or other):
        parts.append("the report names no address")
    return "; ".join(parts)


def _configured(address: str, settings: Settings) -> bool:
    """One of ours: a mailbox, an agent (or an agent domain), a tier's notify list."""
    tiers = {notify for tier in settings.tiers.values() for notify in tier.notify}
    return address in settings.own_addresses or address in tiers or agent_for(address, settings.agents) is not None
