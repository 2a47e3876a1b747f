"""Cross-key checks of a config that pydantic has validated key by key.

    config.load: YAML ─► values.Settings ─► **checks**: problems (exit 2) · warnings (exit 0, said loudly)

A problem is a config that cannot work: a calendar that is not there, a
mailbox whose IMAP folder would be moved onto itself, a relay login without
its password. A warning is a config that works but loses something without
a word: a tier that nobody hears escalations of, the loop id every install
once shared. Each is a `FILE:LINE: message` at the key to change.
"""

from __future__ import annotations

from mailtriage.config.values import SHARED_LOOP_ID, Settings
from mailtriage.config.yamlsrc import Locator
from mailtriage.errors import Problem
from mailtriage.model import Severity, Tier


def problems(settings: Settings, locator: Locator) -> list[Problem]:
    """Everything that makes the config unusable, beyond single keys."""
    return (_calendars(settings, locator) + _mailboxes(settings, locator) + _agents(settings, locator)
            + _smtp_out(settings, locator))


def warnings(settings: Settings, locator: Locator) -> list[Problem]:
    """What works but silently loses mail or notices; `config check` prints
    these and exits 0, the daemon logs them at every start and reload."""
    found = [_warning(locator, _tier_path(settings, tier), _empty_tier(tier))
             for tier in Tier if not (settings.tiers.get(tier) and settings.tiers[tier].notify)]
    if settings.loop_id == SHARED_LOOP_ID and settings.mailboxes:
        found.append(_warning(locator, ("loop_id",), (
            f"loop_id: {SHARED_LOOP_ID} is the value every install once shared: another mailtriage "
            "(a customer's, your vendor's) drops the automatic mail it gets from you as its own loop. "
            "Remove the line (the first mailbox's address is used) or choose a value of your own")))
    return found


def _warning(locator: Locator, path: tuple, message: str) -> Problem:
    return locator.problem(path, f"warning: {message}")


def _tier_path(settings: Settings, tier: Tier) -> tuple:
    return ("tiers", tier.value, "notify") if tier in settings.tiers else ("tiers",)


def _empty_tier(tier: Tier) -> str:
    who = "your vendor's support address" if tier is Tier.L4 else f"the {tier.value} team's address(es)"
    return (f"tiers.{tier.value}.notify is empty: nobody hears of {tier.value} tickets that no agent is "
            f"assigned to (new tickets, SLA warnings, escalations). Fill in {who}: "
            f"{tier.value}: {{notify: [{_example(tier)}]}}")


def _example(tier: Tier) -> str:
    return "vendor@partner.example" if tier is Tier.L4 else f"{tier.value.lower()}-team@example.test"


def _calendars(settings: Settings, locator: Locator) -> list[Problem]:
    """Calendars that do not load, and calendars named but not defined."""
    from mailtriage.sla.calendar import calendar_from_config

    found: list[Problem] = []
    for name, data in settings.calendars.items():
        try:
            calendar_from_config(name, data)
        except (ValueError, TypeError, KeyError) as exc:
            where = ("calendars", name) + tuple(getattr(exc, "path", ()))
            found.append(locator.problem(where, f"calendar {name}: {exc}"))
    for severity, target in settings.sla.targets.items():
        if target.calendar not in settings.calendars:
            found.append(locator.problem(
                ("sla", "targets", severity.value, "calendar"),
                f"sla.targets.{severity.value}: no calendar named {target.calendar!r}"))
    for tier, tier_settings in settings.tiers.items():
        if tier_settings.calendar is not None and tier_settings.calendar not in settings.calendars:
            found.append(locator.problem(
                ("tiers", tier.value, "calendar"),
                f"tiers.{tier.value}: no calendar named {tier_settings.calendar!r}"))
    if settings.digest is not None and settings.digest.calendar not in settings.calendars:
        found.append(locator.problem(("digest", "calendar"),
                                     f"digest.calendar: no calendar named {settings.digest.calendar!r}"))
    missing = [s.value for s in Severity if s not in settings.sla.targets]
    if missing:
        found.append(locator.problem(("sla", "targets"), f"sla.targets: missing {', '.join(missing)}"))
    return found


def _mailboxes(settings: Settings, locator: Locator) -> list[Problem]:
    """Names and addresses used twice, and a processed folder that is the watched one."""
    found: list[Problem] = []
    names: set[str] = set()
    owners: dict[str, str] = {}           # address → "mailbox NAME's address" (or comment_address)
    for index, mailbox in enumerate(settings.mailboxes):
        if mailbox.name in names:
            found.append(locator.problem(("mailboxes", index, "name"),
                                         f"mailbox name {mailbox.name!r} is used twice"))
        names.add(mailbox.name)
        for key in ("address", "comment_address"):
            address = getattr(mailbox, key)
            if address is None:
                continue
            if address in owners:
                found.append(locator.problem(("mailboxes", index, key), (
                    f"mailbox {mailbox.name}: {key} {address} is already {owners[address]}: "
                    "mail to it could not tell which mailbox (and queue) it is for")))
            owners.setdefault(address, f"mailbox {mailbox.name}'s {key}")
        imap = mailbox.imap
        if imap is not None and imap.processed_folder is not None \
                and imap.processed_folder.casefold() == imap.folder.casefold():
            found.append(locator.problem(("mailboxes", index, "imap", "processed_folder"), (
                f"mailbox {mailbox.name}: processed_folder {imap.processed_folder!r} is the folder it "
                f"watches ({imap.folder!r}): every message would be moved onto itself, for ever. "
                "Name another folder, or leave the key out to flag messages \\Seen")))
    return found


def _agents(settings: Settings, locator: Locator) -> list[Problem]:
    """An agent address that is one of ours: its mail would be our own coming back."""
    ours = settings.own_addresses
    return [locator.problem(("agents", index, "email"), (
                f"agents: {agent.email} is one of our own mailbox addresses: its mail would be taken "
                "for our own coming back (a loop) and never relayed. List the agent's own address"))
            for index, agent in enumerate(settings.agents) if agent.email in ours]


def _smtp_out(settings: Settings, locator: Locator) -> list[Problem]:
    """A relay login without a password fails every mail (530): say so before the first one."""
    smtp = settings.smtp_out
    if smtp.maildir or not smtp.username or smtp.password_env or smtp.auth == "oauth2":
        return []
    return [locator.problem(("smtp_out", "username"), (
        f"smtp_out: username {smtp.username} is set but password_env is not: the relay would "
        "refuse every mail (530). Name the environment variable that holds the password "
        "(password_env: MT_SMTP_PASSWORD)"))]
