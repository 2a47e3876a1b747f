"""Reply tokens: signed plus-addresses that name a ticket (pure).

    outgoing ticket mail: Reply-To: support+MT-42.k3vq7x2m4a@example.test
    inbound mail to it (envelope, To/Cc, Delivered-To) ─► MT-42, when nothing else threads it

Vendors' ticket systems (the L4 tier) and some web mailers answer without
References and with a subject of their own; their reply still goes to the
Reply-To address. The signature is HMAC-SHA256 over the ticket's reference
(`MT-42`, the configured prefix) with a secret from the environment,
base32-encoded (RFC 4648, lower case: local parts pass through clients and
MTAs that change case) and cut to `length` characters (10 = 50 bits). An
address of that form whose signature does not verify — forged, truncated,
copied onto another ticket's number — names no ticket and is reported as a
bad token. The comparison is `hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_LENGTH = 10                   # base32 characters: 50 bits
_SUFFIX = re.compile(r"([A-Za-z][A-Za-z0-9]{0,15})-(\d{1,12})(?:\.([A-Za-z0-9]*))?")


@dataclass(frozen=True)
class Found:
    """What the recipients of one message say by their reply tokens."""

    ticket: int | None = None          # the ticket a valid token names
    address: str | None = None         # the address that carried it
    bad: tuple[str, ...] = ()          # addresses of our token form whose signature does not verify


@dataclass(frozen=True)
class Signer:
    """Signs and checks tokens for one install (the secret never leaves it)."""

    secret: bytes = b""
    prefix: str = "MT"
    length: int = DEFAULT_LENGTH

    def __repr__(self) -> str:        # the secret is not for logs or tracebacks
        return f"Signer(prefix={self.prefix!r}, length={self.length})"

    def signature(self, ticket: int) -> str:
        digest = hmac.new(self.secret, self._ref(ticket).encode("ascii"), hashlib.sha256).digest()
        return base64.b32encode(digest).decode("ascii").lower()[:self.length]

    def address(self, base: str, ticket: int) -> str:
        """`local+MT-42.signature@domain` for the address `local@domain`."""
        local, _, domain = base.partition("@")
        return f"{local}+{self._ref(ticket)}.{self.signature(ticket)}@{domain}"

    def verify(self, ticket: int, signature: str) -> bool:
        """Constant time; a signature of another length (a truncated one) fails."""
        return hmac.compare_digest(self.signature(ticket).encode("ascii"), signature.lower().encode("ascii"))

    def scan(self, addresses: Iterable[str], ours: frozenset[str]) -> Found:
        """The valid token among `addresses` (the first), and the bad ones.
        Only plus-addresses of `ours` count; another `+suffix` is no token."""
        ticket, carrier, bad = None, None, []
        for address in dict.fromkeys(a.strip().strip("<>").lower() for a in addresses):
            parsed = self.parse(address, ours)
            if parsed is None:
                continue
            number, signature = parsed
            if signature is not None and signature.isascii() and self.verify(number, signature):
                if ticket is None:
                    ticket, carrier = number, address
            else:
                bad.append(address)
        return Found(ticket, carrier, tuple(bad))

    def parse(self, address: str, ours: frozenset[str]) -> tuple[int, str | None] | None:
        """(ticket, signature or None) for `ours-local+PREFIX-n[.sig]@domain`, else None."""
        local, _, domain = address.lower().rpartition("@")
        base, plus, suffix = local.partition("+")
        if not plus or f"{base}@{domain}" not in ours:
            return None
        match = _SUFFIX.fullmatch(suffix)
        if match is None or match.group(1).lower() != self.prefix.lower():
            return None
        return int(match.group(2)), match.group(3)

    def _ref(self, ticket: int) -> str:
        return f"{self.prefix}-{ticket}"


def base_address(address: str) -> str:
    """`support+anything@example.test` → `support@example.test` (RFC 5233 subaddress)."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    return f"{local.partition('+')[0]}@{domain}"
