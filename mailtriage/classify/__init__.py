"""classify: decide severity, tier, queue, assignee and tags for a message.

Flow position: parse → guards → thread → **classify** → tickets. rules.py
turns the rules file into a RuleSet once; engine.classify() applies it to
each ParsedMail and returns a Verdict that says which rule decided what, and
on which text.
"""

from mailtriage.classify.engine import classify
from mailtriage.classify.rules import RuleSet, load_rules, rules_from_text

__all__ = ["RuleSet", "classify", "load_rules", "rules_from_text"]
