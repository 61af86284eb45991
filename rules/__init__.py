"""Breakpoint rules (YAML) and the responsive markup they produce.

    from rules import load_rules, build_markup, url_signer
    ruleset = load_rules("rules/examples")            # RulesInvalid lists every error, with file:line
    rule = ruleset.rule_for("hero", "rocket.jpg")     # Problem 404/400 when unknown / not applicable
    markup = build_markup(rule, "rocket.jpg", record.header, record.short_version, url_signer(signer))
    markup.img_html(), markup.picture_html(), markup.preload_html(), markup.link_header(), markup.to_json()

`model` holds the frozen values, `loader` reads and validates YAML, `srcset` plans candidate widths
and `sizes` (pure), `markup` signs and renders (pure), `cli` and `http` expose them. The format is
described by `schema.json`; `examples/site.yaml` uses the demo masters.
"""

from rules.loader import RuleError, RulesInvalid, check_rules, load_rules
from rules.markup import Markup, build_markup, url_signer
from rules.model import Rule, RuleSet

__all__ = [
    "Markup",
    "Rule",
    "RuleError",
    "RuleSet",
    "RulesInvalid",
    "build_markup",
    "check_rules",
    "load_rules",
    "url_signer",
]
