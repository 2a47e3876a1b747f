"""Agent authentication from Authentication-Results (agents.py, pure)."""

from __future__ import annotations

import logging

import pytest

from mailtriage.tickets.agents import authenticate, warn_about_policy
from mailtriage.mail.parse import parse
from mailtriage.config.values import Settings

from helpers import eml

MX = "mx.example.test"


def settings(require: str = "dkim_or_spf", ids: list[str] | None = None) -> Settings:
    return Settings.model_validate({
        "agents": [{"email": "alice@example.test", "name": "Alice"}, {"email": "@ops.example.test"}],
        "agent_auth": {"authserv_ids": [MX] if ids is None else ids, "require": require},
        "sla": {"targets": {s: {"first_response": "1h", "resolution": "2h"} for s in ("S1", "S2", "S3", "S4")}},
    })


def mail(*results: str, sender: str = "Alice <alice@example.test>"):
    headers = "".join(f"Authentication-Results: {r}\r\n" for r in results)
    return parse(headers.encode() + eml("Re: [MT-1] x", "#resolve", sender=sender))


@pytest.mark.parametrize("header, require", [
    (f"{MX}; dkim=pass header.d=example.test", "dkim"),
    (f"{MX}; dkim=pass header.i=@example.test", "dkim"),
    (f"{MX}; dkim=pass header.i=alice@example.test header.d=example.test", "dkim_or_spf"),
    (f"{MX}; spf=pass smtp.mailfrom=alice@example.test", "spf"),
    (f"{MX}; spf=pass smtp.mailfrom=example.test", "dkim_or_spf"),
    (f"{MX.upper()}; DKIM=pass header.d=Example.TEST", "dkim"),
    (f"{MX} 1; dkim=fail header.d=example.test; spf=pass smtp.mailfrom=alice@example.test", "dkim_or_spf"),
])
def test_a_passing_result_from_a_trusted_server_makes_an_agent(header, require):
    check = authenticate(mail(header), settings(require))
    assert check.trusted and check.agent is not None and check.agent.name == "Alice", check.reason


@pytest.mark.parametrize("header, require, why", [
    (None, "dkim_or_spf", "no Authentication-Results header"),
    ("mx.evil.example; dkim=pass header.d=example.test", "dkim_or_spf", "untrusted mx.evil.example"),
    (f"{MX}; dkim=fail header.d=example.test", "dkim_or_spf", "dkim=fail"),
    (f"{MX}; dkim=pass header.d=evil.example", "dkim", "(other domain)"),
    (f"{MX}; spf=pass smtp.mailfrom=bounce@evil.example", "spf", "(other domain)"),
    (f"{MX}; spf=pass smtp.mailfrom=alice@example.test", "dkim", "needs dkim=pass"),
    (f"{MX}; dkim=pass header.d=example.test", "spf", "needs spf=pass"),
    (f"{MX}; spf=softfail smtp.mailfrom=alice@example.test", "dkim_or_spf", "spf=softfail"),
    (f"{MX}; dkim=pass header.d=example.test.evil.example", "dkim", "(other domain)"),
    (f"{MX}; ;;; garbage", "dkim_or_spf", "unreadable"),
])
def test_anything_less_is_a_forged_agent(header, require, why):
    check = authenticate(mail(*([header] if header else [])), settings(require))
    assert not check.trusted and check.forged
    assert why in check.reason


def test_no_trusted_servers_configured_means_nobody_is_trusted():
    check = authenticate(mail(f"{MX}; dkim=pass header.d=example.test"), settings(ids=[]))
    assert check.forged and "authserv_ids is empty" in check.reason


def test_require_none_believes_from_alone_and_warns(caplog):
    check = authenticate(mail(), settings("none"))
    assert check.trusted
    with caplog.at_level(logging.WARNING):
        warn_about_policy(settings("none"))
    assert "closed networks only" in caplog.text


def test_a_domain_entry_covers_its_addresses():
    header = f"{MX}; dkim=pass header.d=ops.example.test"
    assert authenticate(mail(header, sender="carol@ops.example.test"), settings()).trusted
    assert not authenticate(mail(header, sender="carol@example.test"), settings()).trusted


def test_customers_are_not_agents():
    check = authenticate(mail(f"{MX}; dkim=pass header.d=customer.example",
                              sender="carla@customer.example"), settings())
    assert check.agent is None and not check.trusted and not check.forged
