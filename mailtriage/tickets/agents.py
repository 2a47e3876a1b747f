"""Agents: who is one, and whether this message really comes from them (pure).

    parse → guards → **agents.authenticate** → thread → classify → apply

A From: header is typed by the sender, so it never suffices on its own
(DESIGN invariant 5). The MX that received the message checked DKIM and SPF
and wrote the outcome into an `Authentication-Results` header (RFC 8601);
we believe only headers whose authserv-id is one of
`agent_auth.authserv_ids`. RFC 8601 section 5 asks that MX to delete any
such header that arrived with the message claiming its own authserv-id, so a
sender cannot forge one: that deletion is part of the deployment (README,
"Agents").

`require` says what must pass for the agent's domain (the domain of the
From: address): `dkim` (a signature with header.d, or the domain of
header.i, equal to it), `spf` (smtp.mailfrom in it), `dkim_or_spf`, or
`none` — From: alone, for closed networks, logged loudly at start-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import authres

from mailtriage.model import ParsedMail
from mailtriage.config.values import Agent, AgentAuth, Settings, agent_for

log = logging.getLogger(__name__)

HEADER = "Authentication-Results"


@dataclass(frozen=True)
class AgentCheck:
    """What From: claims and whether we believe it."""

    agent: Agent | None           # the agent entry From: names, believed or not
    trusted: bool                 # may run commands and be relayed
    reason: str                   # why (or why not), for events and logs

    @property
    def forged(self) -> bool:
        """From: names an agent, but nothing vouches for it."""
        return self.agent is not None and not self.trusted


NOT_AN_AGENT = AgentCheck(None, False, "not an agent address")


def authenticate(mail: ParsedMail, settings: Settings) -> AgentCheck:
    agent = agent_for(mail.from_addr, settings.agents) if mail.from_addr else None
    if agent is None:
        return NOT_AN_AGENT
    policy = settings.agent_auth
    if policy.require == "none":
        return AgentCheck(agent, True, "agent_auth.require is none: From: alone is believed")
    domain = mail.from_addr.rpartition("@")[2].lower()
    passed, seen = _passing_methods(mail, policy, domain)
    wanted = {"dkim": {"dkim"}, "spf": {"spf"}, "dkim_or_spf": {"dkim", "spf"}}[policy.require]
    if passed & wanted:
        methods = "+".join(sorted(passed & wanted))
        return AgentCheck(agent, True, f"{methods}=pass for {domain}")
    return AgentCheck(agent, False, _why_not(policy, domain, seen))


def _passing_methods(mail: ParsedMail, policy: AgentAuth, domain: str) -> tuple[set[str], list[str]]:
    """Methods that passed for `domain` in trusted headers, and a summary of
    every result looked at (for the event that explains a refusal)."""
    trusted_ids = {i.lower() for i in policy.authserv_ids}
    passed: set[str] = set()
    seen: list[str] = []
    for value in mail.header_all(HEADER):
        header = _parse(value)
        if header is None:
            seen.append("an unreadable Authentication-Results header")
            continue
        server = (header.authserv_id or "").lower()
        if server not in trusted_ids:
            seen.append(f"Authentication-Results from untrusted {server or '(no authserv-id)'}")
            continue
        for result in header.results:
            method, outcome = str(result.method).lower(), str(result.result).lower()
            if method not in ("dkim", "spf"):
                continue
            aligned = _aligned(result, method, domain)
            seen.append(f"{method}={outcome}" + ("" if aligned else " (other domain)"))
            if outcome == "pass" and aligned:
                passed.add(method)
    return passed, seen


def _parse(value: str) -> authres.AuthenticationResultsHeader | None:
    try:
        return authres.AuthenticationResultsHeader.parse_value(value)
    except Exception:  # noqa: BLE001 - authres raises its own SyntaxError and others on junk
        return None


def _aligned(result: authres.core.AuthenticationResult, method: str, domain: str) -> bool:
    # From the properties, not authres' per-method attributes: those exist only
    # when the method name was written in lower case.
    props = {(str(p.type).lower(), str(p.name).lower()): str(p.value or "").lower() for p in result.properties}
    if method == "dkim":
        return domain in (props.get(("header", "d"), ""), props.get(("header", "i"), "").rpartition("@")[2])
    return props.get(("smtp", "mailfrom"), "").rpartition("@")[2] == domain


def _why_not(policy: AgentAuth, domain: str, seen: list[str]) -> str:
    need = {"dkim": "dkim", "spf": "spf", "dkim_or_spf": "dkim or spf"}[policy.require]
    if not policy.authserv_ids:
        return f"agent_auth.authserv_ids is empty, so nothing can vouch for {domain}"
    found = "; ".join(dict.fromkeys(seen)) if seen else "no Authentication-Results header"
    return f"needs {need}=pass for {domain} from {', '.join(policy.authserv_ids)}; found: {found}"


def warn_about_policy(settings: Settings) -> None:
    """Say loudly at start-up when From: alone makes an agent."""
    if settings.agent_auth.require == "none" and settings.agents:
        log.warning("agent_auth.require is none: anybody who puts an agent's address in From: can run "
                    "commands and write to customers in our name. Use this on closed networks only.")
    elif settings.agents and not settings.agent_auth.authserv_ids:
        log.warning("agent_auth.authserv_ids is empty: no agent mail can be authenticated, so agents' "
                    "replies are handled as customer mail (not relayed, no commands)")
