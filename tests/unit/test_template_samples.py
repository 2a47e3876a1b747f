"""notify.samples: the sample data `config check` renders templates with.

Every built-in template renders with it (so the samples hold every name the
templates use), and the samples come from the real builders (so they hold
every name the code gives)."""

from __future__ import annotations

import pytest

from mailtriage.app import load_config
from mailtriage.config.builtin import builtin
from mailtriage.notify.render import PAGE_SUFFIX, SUFFIX, Templates
from mailtriage.notify.samples import sample_contexts

# `_NAME.html` is a part other templates include (the SLA chart), not rendered on its own.
BUILTIN = sorted(p.name for p in builtin("templates").iterdir()
                 if p.suffix in (SUFFIX, PAGE_SUFFIX) and not p.name.startswith("_"))


@pytest.fixture(scope="module")
def contexts() -> dict:
    return sample_contexts(load_config(None))


def test_every_built_in_template_has_a_sample(contexts: dict) -> None:
    assert sorted(contexts) == BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
def test_every_built_in_template_renders_with_its_sample(contexts: dict, name: str) -> None:
    text = Templates([builtin("templates")]).render_file(name, contexts[name])
    if name == "digest.txt":                       # about all tickets, not one: MT-42 is in a list
        assert text.startswith("Subject: Support digest ") and "MT-42" in text
    elif name.startswith("alert"):          # about the install, not a ticket
        assert text.startswith("Subject: [mailtriage] mailbox:support ")
    elif name.endswith(SUFFIX):
        assert text.startswith("Subject: ") and "[MT-42]" in text.splitlines()[0]
    else:
        assert "<h1>SLA compliance</h1>" in text and "S2" in text
