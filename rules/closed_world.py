"""Closed world: only renditions that some rule declares for a master are rendered.

A leaked signing key then cannot be used to ask for arbitrary sizes: a request must name exactly
one of the URLs a rule's markup can contain for that master (compared by their canonical
rendering options: `w`, `h`, `fit`, `g`, `fx`, `fy`, `crop`, `q`, `fm`, `dpr`; `v`, `exp` and
`kid` are ignored). Besides those, every master may be asked at its own size (no options but
`v`; `w` only where the output limits scale it): what image sitemaps link, one rendition per
master, so the set stays finite.
"""

from __future__ import annotations

from cachetools import LRUCache

from origin.core.errors import Problem
from origin.core.limits import own_size_width
from origin.core.master import MasterHeader
from origin.core.request import RenditionOptions, shape_key
from rules.model import Rule, RuleSet
from rules.srcset import Capacity, plan


def declared_renditions(rule: Rule, header: MasterHeader, capacity: Capacity) -> frozenset[str]:
    """The shape keys of every URL the rule's markup can contain for this master."""
    try:
        rule_plan = plan(rule, header, capacity)
    except Problem:
        return frozenset()
    return frozenset(shape_key(c.options) for s in rule_plan.all_sources for c in s.candidates)


class ClosedWorld:
    def __init__(self, ruleset: RuleSet, capacity: Capacity, max_entries: int = 10_000):
        self.ruleset = ruleset
        self.capacity = capacity
        # (rule name, master header) -> declared shape keys. The header matters because a rule's
        # largest candidate is capped at what the master can give. One set lookup per request.
        self._declared: LRUCache[tuple[str, MasterHeader], frozenset[str]] = LRUCache(max_entries)
        # master header -> the shape key of the master at its own size (planned once, like the rules')
        self._own_size: LRUCache[MasterHeader, str] = LRUCache(max_entries)

    def allows(self, master_path: str, opts: RenditionOptions, header: MasterHeader) -> bool:
        """Whether some rule matching this master declares exactly this rendition."""
        wanted = shape_key(opts)
        if wanted == self._own_size_key(header):
            return True  # the master at its own size: what image sitemaps link
        for rule in self.ruleset.rules_for(master_path):
            key = (rule.name, header)
            declared = self._declared.get(key)
            if declared is None:
                declared = self._declared[key] = declared_renditions(rule, header, self.capacity)
            if wanted in declared:
                return True
        return False

    def _own_size_key(self, header: MasterHeader) -> str:
        own = self._own_size.get(header)
        if own is None:
            width = own_size_width(header.width, header.height, self.capacity.limits)
            own = self._own_size[header] = shape_key(RenditionOptions(w=width))
        return own
