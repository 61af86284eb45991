"""The public description of a rule set: what a client needs to build a rule's URLs and srcsets.

`GET /rules.json` and `edge rules export` print it; the JavaScript package (integrations/js)
plans markup from it exactly as rules.srcset does. Pure, and nothing secret in it: rule names,
globs, slots and framings are what every page's markup already shows.

    {"schema": 1, "keyless": bool, "breakpoints": {"sm": 640, ...},
     "settings": {"merge_step", "max_width"}, "limits": {"max_output_side", "max_output_pixels"},
     "enlargement": {"auto": 2, "never": 1}, "formats": {"avif": {"mime", "alpha", ...}, ...},
     "rules": {"hero": {"sizes", "formats": [["avif", 45], ...], "img": RANGE, "ranges": [RANGE, ...], ...}}}

A RANGE is one framing over viewports [min_viewport, until): its `device_widths` (before any
master caps and merges them), `css_width` (the widest slot) and `widths`, the candidates for a
master large enough not to cap them, which keyless URLs may name for any master.
"""

from __future__ import annotations

from typing import Any

from origin.core.formats import FORMATS
from origin.core.request import MAX_SIZE
from rules.model import Framing, Rule, RuleSet
from rules.srcset import Capacity, declared_widths, framing_ranges, range_widths, sizes_attribute

SCHEMA = 1


def describe(ruleset: RuleSet, capacity: Capacity, *, keyless: bool) -> dict[str, Any]:
    """The description; `keyless`: whether the server answers keyless URLs (closed world)."""
    return {
        "schema": SCHEMA,
        "keyless": keyless,
        "breakpoints": {b.name: b.min_width for b in ruleset.breakpoints},
        "settings": {"merge_step": ruleset.settings.merge_step, "max_width": ruleset.settings.max_width},
        "limits": {
            "max_output_side": min(MAX_SIZE, capacity.limits.max_output_side),
            "max_output_pixels": capacity.limits.max_output_pixels,
        },
        "enlargement": {e: capacity.superres.width_factor(e) for e in ("auto", "never")},
        "formats": {
            f.name: {"mime": f.mime, "alpha": f.alpha, "animation": f.animation, "lossy": f.lossy, "named": f.named}
            for f in FORMATS.values()
        },
        "rules": {rule.name: _rule(rule, capacity) for rule in ruleset.rules},
    }


def _rule(rule: Rule, capacity: Capacity) -> dict[str, Any]:
    return {
        "description": rule.description,
        "masters": list(rule.masters),
        "sizes": sizes_attribute(rule.sizes),
        "dprs": list(rule.dprs),
        "formats": [[fmt, q] for fmt, q in rule.formats],
        "quality": rule.quality,
        "max_bytes": rule.max_bytes,
        "lcp": rule.lcp,
        "enhance": rule.enhance,
        "img": _range(rule, rule.framing, 0, None, capacity),
        "ranges": [_range(rule, f, lo, until, capacity) for f, lo, until in framing_ranges(rule)],
    }


def _range(rule: Rule, framing: Framing, lo: int, until: int | None, capacity: Capacity) -> dict[str, Any]:
    spec = range_widths(rule, lo, until)
    return {
        "min_viewport": lo,
        "until": until,
        "framing": _framing(framing),
        "device_widths": list(spec.device_widths),
        "css_width": spec.css_width,
        "widths": declared_widths(rule, framing, lo, until, capacity),
    }


def _framing(framing: Framing) -> dict[str, Any]:
    crop = framing.crop
    return {
        "aspect": [framing.aspect.numerator, framing.aspect.denominator] if framing.aspect is not None else None,
        "fit": framing.fit,
        "gravity": framing.gravity,
        "focal": list(framing.focal) if framing.focal else None,
        "crop": [crop.x, crop.y, crop.w, crop.h] if crop else None,
    }
