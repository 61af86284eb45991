"""Keyless URLs for declared renditions: `GET /img/{path}?rule={rule}&w={width}[&fm={format}]`.

Browser-side loaders (next/image loaders, unpic, Astro and Nuxt components) build image URLs
where no signing key may go. Under closed world the server accepts this unsigned form, and only
when the named rule applies to the master and declares that width (with `fm`: in a `<picture>`
source of that format; without: in the negotiated `<img>` srcset), either for this master or for
any master large enough not to cap it (the widths `/rules.json` lists: those are snapped to this
master's candidate that serves them). The request then stands for exactly the declared
rendition's options, which are what the signed URL in the rule's markup carries, so both reach
one cache entry. Anything else unsigned is refused (403): an undeclared width, another rule's
width, an unknown rule, any other parameter. Pure: the caller looks up the master and supplies
its header.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_plus

from origin.core.errors import Problem
from origin.core.master import MasterHeader
from origin.core.request import RenditionOptions
from rules.model import Rule, RuleSet
from rules.srcset import Capacity, declared_widths, plan

PARAMETERS = frozenset({"rule", "w", "fm"})


def refused(why: str) -> Problem:
    return Problem(403, f"keyless URL refused: {why}")


@dataclass(frozen=True)
class Keyless:
    rule: str
    width: int
    format: str | None  # None: the negotiated <img> candidates


def parse_keyless(query: str) -> Keyless | None:
    """The keyless form, or None for a query that is not one (no `rule`): an ordinary URL, to be
    signed. A query with `rule` that is not exactly the keyless form is a 403."""
    pairs = [pair.partition("=") for pair in query.split("&") if pair]
    names = [unquote_plus(name) for name, _, _ in pairs]
    if "rule" not in names:
        return None
    if len(set(names)) != len(names) or not set(names) <= PARAMETERS or "w" not in names:
        raise refused("it takes rule, w and optionally fm, each once, and nothing else")
    values = {unquote_plus(name): unquote_plus(raw) for name, _, raw in pairs}
    if not values["w"].isdigit() or not 0 < int(values["w"]) < 100_000:
        raise refused("w is not a declared width")
    return Keyless(values["rule"], int(values["w"]), values.get("fm"))


def keyless_rule(request: Keyless, ruleset: RuleSet, master_path: str) -> Rule:
    """The rule the request names, when it applies to this master; else a 403 (checked before the
    master is looked up, so an unsigned request learns nothing of paths no rule covers)."""
    rule = ruleset.rule(request.rule)
    if rule is None or not rule.matches(master_path):
        raise refused(f"no rule {request.rule!r} applies to this master")
    return rule


def declared_options(request: Keyless, rule: Rule, header: MasterHeader, capacity: Capacity) -> RenditionOptions:
    """The options of the declared rendition the keyless request names, or a 403."""
    try:
        rule_plan = plan(rule, header, capacity)
    except Problem:
        raise refused("the rule's crop lies outside this master") from None
    sources = [rule_plan.img] if request.format is None else rule_plan.all_sources
    sources = [s for s in sources if request.format is None or s.format == request.format]
    for source in sources:
        for candidate in source.candidates:
            if candidate.width == request.width:
                return candidate.options
    # A width the rule declares for any master (rules.json lists them; a client need not know this
    # master's size) stands for this master's candidate that serves it: the smallest as wide, else
    # its widest. Still one of the declared renditions, so the set a client can reach stays bounded.
    for source in sources:
        if request.width in declared_widths(rule, source.framing, source.min_viewport, source.until, capacity):
            return next((c for c in source.candidates if c.width >= request.width), source.candidates[-1]).options
    fm = f" as {request.format}" if request.format else ""
    raise refused(f"rule {request.rule!r} declares no {request.width} px rendition{fm} of this master")


def renderable_count(rule: Rule, headers: list[MasterHeader], capacity: Capacity) -> int:
    """How many distinct renditions a rule declares over these masters (the keyless set's size,
    before format negotiation multiplies the <img> candidates by the formats clients take)."""
    total = 0
    for header in headers:
        try:
            rule_plan = plan(rule, header, capacity)
        except Problem:
            continue
        total += len({(s.format, c.width) for s in rule_plan.all_sources for c in s.candidates})
    return total
