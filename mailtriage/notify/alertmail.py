"""The operator's alerts: a component has failed for `alerts.after`, or works
again (pure: values in, an OutgoingMail out). The health job (health/monitor.py)
decides when and queues the mail in the outbox like every other mail.

`Auto-Submitted: auto-generated` (RFC 3834): nobody's auto-responder answers
it, and ours ignores an alert that comes back to a support address.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mailtriage.config.values import Settings
from mailtriage.health.state import Action, State
from mailtriage.notify.compose import Outgoing, OutgoingMail, new_message_id
from mailtriage.notify.render import Templates
from mailtriage.notify.views import sender

TEMPLATES = {"alert": "alert", "recovered": "alert_recovered"}
KINDS = {"alert": "alert", "recovered": "alert-recovered"}


def context(state: State, now: datetime, from_name: str) -> dict[str, object]:
    """What alert.txt and alert_recovered.txt see: plain strings."""
    since = state.failing_since or state.last_error_at
    return {"component": state.name, "status": state.status, "error": state.last_error or "",
            "failing_since": _at(since), "last_success": _at(state.last_success_at),
            "alerted_at": _at(state.alerted_at), "now": _at(now),
            "duration": _minutes(now - since) if since is not None else "", "from_name": from_name}


def alert(settings: Settings, templates: Templates, state: State, action: Action, now: datetime) -> OutgoingMail:
    assert settings.alerts is not None
    from_addr, from_name = sender(settings, None)
    rendered = templates.render(TEMPLATES[action], context(state, now, from_name))
    mail = Outgoing(from_addr=from_addr, from_name=from_name, to=tuple(settings.alerts.to),
                    subject=rendered.subject, body=rendered.body, auto_submitted="auto-generated",
                    loop_id=settings.loop_id)
    return OutgoingMail(KINDS[action], mail, new_message_id(from_addr.partition("@")[2]))


def _at(when: datetime | None) -> str:
    return "" if when is None else when.isoformat(timespec="seconds")


def _minutes(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
