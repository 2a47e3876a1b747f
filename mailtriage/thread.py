"""Threading: which ticket does a message belong to? (pure)

The store gathers the facts (`ThreadFacts`: which tickets the message's
tag, references and referrers point at); `decide()` applies the order:

1. a `[MT-n]` tag in the subject, but only when the sender is a participant
   of that ticket or an agent (nobody hijacks a ticket by typing its number);
2. In-Reply-To/References that hit any known message, ours or theirs;
3. a stored message that refers to this one (it arrived after its reply:
   IMAP and Maildir order is not conversation order);
4. a reply token (mail.tokens): the message was sent to the signed
   plus-address in our Reply-To (a vendor's system that keeps neither the
   tag nor References); a token whose signature fails threads nothing;
5. otherwise a new ticket.

A tag or token of a ticket that was merged into another names the survivor
(`merged_into`, followed by the store).

When 2 and 3 point at different tickets the message is the link between
them and the tickets are merged, so the result does not depend on the order
in which a mailbox was read — except two tickets an agent split apart
(`#split`): those are never merged back; the message goes to the ticket of
the newest message it refers to (its In-Reply-To, else the last known entry
of its References).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Reply and forward prefixes in many languages, stacked or numbered:
# Re, RE[2], Re^2, AW, SV, VS, Antw, Odp, Ответ, Отв, Ref, Réf, RIF, Sv, Fwd, WG, TR …
_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|antwort|odp|ответ|отв|ref|réf|rif|r|fw|fwd|wg|tr|doorst|enc|πλθ|回复|答复|转发)"
    r"\s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)


def strip_reply_prefixes(subject: str) -> str:
    """`Re: AW: RE[2]: Printer` → `Printer` (for display and new tickets)."""
    stripped = _PREFIX.sub("", subject, count=1).strip()
    return stripped or subject.strip()


def tag_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(r"\[\s*" + re.escape(prefix) + r"-(\d{1,12})\s*\]", re.IGNORECASE)


def find_tag(subject: str, prefix: str) -> int | None:
    """The ticket number in a `[MT-42]` subject tag, or None."""
    match = tag_pattern(prefix).search(subject)
    return int(match.group(1)) if match else None


def strip_tag(subject: str, prefix: str) -> str:
    return re.sub(r"\s{2,}", " ", tag_pattern(prefix).sub("", subject)).strip()


def display_subject(subject: str, prefix: str) -> str:
    """What a ticket is called: no reply prefixes, no tag."""
    return strip_reply_prefixes(strip_tag(strip_reply_prefixes(subject), prefix)) or "(no subject)"


@dataclass(frozen=True)
class ThreadFacts:
    """What the store knows that bears on threading one message."""

    tagged_ticket: int | None = None          # the tag's ticket, if it exists
    sender_may_use_tag: bool = False          # participant of that ticket, or an agent
    referenced_tickets: tuple[int, ...] = ()  # tickets of known messages this one refers to
    referring_tickets: tuple[int, ...] = ()   # tickets of stored messages that refer to this one
    # The evidence for referenced_tickets: (Message-ID it refers to, its ticket, "message" | "our mail").
    matched: tuple[tuple[str, int, str], ...] = ()
    token_ticket: int | None = None           # the ticket a valid reply token names, if it exists
    token_address: str | None = None          # the address that carried it
    bad_tokens: tuple[str, ...] = ()          # addresses with a token that did not verify
    # Tickets the tag or the token named that were merged: (named, survivor).
    redirected: tuple[tuple[int, int], ...] = ()
    # Pairs of the tickets above one of which was split off the other (#split): never merged back.
    split_pairs: tuple[tuple[int, int], ...] = ()
    # The newest message it refers to that we know (In-Reply-To, else References' last), and its ticket.
    newest: tuple[str, int] | None = None


@dataclass(frozen=True)
class ThreadDecision:
    ticket_id: int | None                     # None: open a new ticket
    via: str                                  # tag, references, referrer, reply-token, new, tag-refused
    merge: tuple[int, ...] = field(default=())   # other tickets to fold into ticket_id
    refused_tag: int | None = None            # a tag we did not honour (event on the new ticket)
    bad_tokens: tuple[str, ...] = ()          # reply tokens that did not verify (an event, a log line)
    kept_apart: tuple[int, ...] = ()          # linked tickets not merged: split apart from ticket_id's group


def decide(facts: ThreadFacts) -> ThreadDecision:
    refused, bad = None, facts.bad_tokens
    if facts.tagged_ticket is not None:
        if facts.sender_may_use_tag:
            return ThreadDecision(facts.tagged_ticket, "tag", bad_tokens=bad)
        refused = facts.tagged_ticket
    candidates = list(dict.fromkeys(facts.referenced_tickets + facts.referring_tickets))
    if candidates:
        via = "references" if facts.referenced_tickets else "referrer"
        # The oldest ticket survives a merge: it holds the start of the conversation.
        return _with_merges(min(candidates), via, facts, refused)
    if facts.token_ticket is not None:
        return ThreadDecision(facts.token_ticket, "reply-token", refused_tag=refused, bad_tokens=bad)
    return ThreadDecision(None, "new" if refused is None else "tag-refused", refused_tag=refused, bad_tokens=bad)


def evidence(decision: ThreadDecision, facts: ThreadFacts, prefix: str) -> str:
    """Why the message went where it went, in a line (`explain`, `tickets show`)."""
    ref = f"{prefix}-{{}}".format
    refused = f"; the subject's tag {ref(decision.refused_tag)} was not honoured (the sender is not a " \
        "participant)" if decision.refused_tag is not None else ""
    refused += "".join(f"; {ref(named)} was merged into {ref(survivor)}" for named, survivor in facts.redirected)
    refused += "".join(f"; the reply token of {address} is not valid (bad signature): it names no ticket"
                       for address in decision.bad_tokens)
    if decision.via == "tag":
        return f"subject tag [{ref(facts.tagged_ticket)}], from a participant or an agent{refused}"
    if decision.via == "reply-token":
        return f"sent to {facts.token_address}, a valid reply token of {ref(decision.ticket_id)}{refused}"
    if decision.via == "references":
        hits = ", ".join(f"{mid} ({'our mail' if kind == 'our mail' else 'a message'} of {ref(ticket)})"
                         for mid, ticket, kind in facts.matched)
        merged = f"; merges {', '.join(ref(t) for t in decision.merge)}" if decision.merge else ""
        if decision.kept_apart:
            newest = f"{facts.newest[0]}, the newest message it refers to" if facts.newest else "the newest ticket"
            merged += (f"; not merged with {', '.join(ref(t) for t in decision.kept_apart)}: split apart by "
                       f"#split, so it goes to {ref(decision.ticket_id)}, the ticket of {newest}")
        return f"In-Reply-To/References name {hits}{merged}{refused}"
    if decision.via == "referrer":
        tickets = ", ".join(ref(t) for t in facts.referring_tickets)
        return f"a stored message of {tickets} refers to this one (its reply came first){refused}"
    return "nothing links it to a ticket: a new one" + refused


def _with_merges(target: int, via: str, facts: ThreadFacts, refused: int | None) -> ThreadDecision:
    linked = sorted(set(facts.referenced_tickets + facts.referring_tickets))
    if not facts.split_pairs:
        return ThreadDecision(target, via, tuple(t for t in linked if t != target), refused, facts.bad_tokens)
    # An agent split these apart: merging them would undo it. The newest message it answers decides.
    if facts.newest is not None and facts.newest[1] in linked:
        target = facts.newest[1]
    else:
        target = max(linked)
    apart = set(facts.split_pairs)
    group = [target]
    for ticket in linked:
        if ticket != target and not any((min(ticket, g), max(ticket, g)) in apart for g in group):
            group.append(ticket)
    return ThreadDecision(target, via, tuple(sorted(group[1:])), refused, facts.bad_tokens,
                          tuple(t for t in linked if t not in group))
