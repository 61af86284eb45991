"""Breakpoint rules, as frozen values: what the loader makes of the YAML files and what markup is built from.

A `RuleSet` holds the named breakpoints, the settings that shape candidate widths, and the rules.
A `Rule` says which masters it applies to (globs), how wide the image's slot is at each breakpoint
(CSS lengths), how the image is framed (aspect, fit, gravity or focal point, crop), which DPRs and
formats to cover, whether it is an LCP candidate, whether super-resolution may enlarge the master,
and optional art direction (another framing from a breakpoint up).

Everything is resolved at load time: breakpoint names become pixel widths, globs become regexes,
lengths become small expression trees, so building markup needs no lookups and cannot fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from origin.core.errors import Problem
from origin.core.formats import FORMATS
from origin.core.request import COMPASS_GRAVITIES, Crop, RenditionOptions
from rules.globs import compile_glob
from rules.lengths import CssLength

DEFAULT_BREAKPOINTS = (("sm", 640), ("md", 768), ("lg", 1024), ("xl", 1280), ("2xl", 1536))
BASE = "default"  # the slot / framing below the smallest breakpoint named in a rule
# Every format negotiation may choose, preferred first, with its default quality.
DEFAULT_FORMATS: tuple[tuple[str, int | str], ...] = tuple(
    (f.name, f.default_quality) for f in FORMATS.values() if f.lossy
)
DEFAULT_DPRS = (1.0, 2.0, 3.0)
FITS = ("cover", "fill")  # the two fits whose output has exactly the box's aspect: no layout shift
GRAVITIES = (*COMPASS_GRAVITIES, "smart")


@dataclass(frozen=True)
class Location:
    """Where something was declared, for messages: `rules/site.yaml:14`."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Breakpoint:
    name: str
    min_width: int  # CSS pixels; the breakpoint applies from this viewport width up


@dataclass(frozen=True)
class Slot:
    """The image's displayed width from a breakpoint up (until the next slot's breakpoint)."""

    breakpoint: str  # a breakpoint name, or BASE
    min_width: int  # 0 for BASE
    length: CssLength


@dataclass(frozen=True)
class Framing:
    """How the master is cut: an aspect (width / height) with fit and gravity or focal point, a crop."""

    aspect: Fraction | None = None  # None: the master's own (or its crop's) aspect
    fit: str = "cover"
    gravity: str = "center"  # or "focal" with `focal`
    focal: tuple[float, float] | None = None
    crop: Crop | None = None

    def rendition(self, width: int, height: int | None) -> RenditionOptions:
        """Options for one candidate (dpr 1: `w` is in device pixels), before format and version."""
        if self.aspect is None:
            return RenditionOptions(w=width, crop=self.crop)
        fx, fy = self.focal if self.focal else (None, None)
        return RenditionOptions(w=width, h=height, fit=self.fit, g=self.gravity, fx=fx, fy=fy, crop=self.crop)


@dataclass(frozen=True)
class ArtDirection:
    """Another framing from a breakpoint up: a `<source media="(min-width: ...)">` of its own."""

    breakpoint: str
    min_width: int
    framing: Framing


@dataclass(frozen=True)
class Settings:
    """How candidate widths are chosen; the same for every rule of a rule set."""

    merge_step: float = 0.10  # candidates closer than this (relative) are merged into the larger one
    min_viewport: int = 320  # narrowest viewport considered (CSS px)
    max_viewport: int = 1920  # widest viewport considered
    max_width: int = 3840  # no candidate is wider than this (device px)
    # DPRs above 2 only count for viewports up to this width: no screen wider than a phone has 3x pixels.
    high_dpr_max_viewport: int = 768


@dataclass(frozen=True)
class Rule:
    name: str
    masters: tuple[str, ...]  # globs, as written
    sizes: tuple[Slot, ...]  # ascending by min_width, starting with BASE
    framing: Framing = Framing()
    dprs: tuple[float, ...] = DEFAULT_DPRS
    formats: tuple[tuple[str, int | str], ...] = DEFAULT_FORMATS  # (format, quality or "auto"), preferred first
    quality: int | str | None = None  # the rule's `quality` (also for the negotiated <img> URL)
    max_bytes: int | None = None  # every URL of the rule carries it
    lcp: bool = False
    enhance: str = "auto"  # "auto": super-resolution may double the master's width; "never": it may not
    art: tuple[ArtDirection, ...] = ()  # ascending by min_width
    description: str = ""
    settings: Settings = Settings()
    breakpoints: tuple[int, ...] = tuple(w for _, w in DEFAULT_BREAKPOINTS)  # all of the rule set's, in px
    source: Location | None = field(default=None, compare=False)
    _patterns: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self._patterns:
            object.__setattr__(self, "_patterns", tuple(compile_glob(g) for g in self.masters))

    def matches(self, master_path: str) -> bool:
        return any(p.fullmatch(master_path) for p in self._patterns)


@dataclass(frozen=True)
class RuleSet:
    breakpoints: tuple[Breakpoint, ...] = tuple(Breakpoint(n, w) for n, w in DEFAULT_BREAKPOINTS)
    rules: tuple[Rule, ...] = ()
    settings: Settings = Settings()
    files: tuple[str, ...] = ()

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def rules_for(self, master_path: str) -> list[Rule]:
        return [r for r in self.rules if r.matches(master_path)]

    def named(self, name: str) -> Rule:
        """The named rule, or a 404 Problem that lists the known ones."""
        rule = self.rule(name)
        if rule is None:
            known = ", ".join(r.name for r in self.rules) or "none"
            raise Problem(404, f"no rule named {name!r} (rules: {known})", {"rule": name})
        return rule

    def rule_for(self, name: str, master_path: str) -> Rule:
        """The named rule, checked to apply to this master: a 404 Problem for an unknown rule, and
        for a master its globs do not match (the same answer whether or not the file exists)."""
        rule = self.named(name)
        if not rule.matches(master_path):
            globs = ", ".join(rule.masters)
            raise Problem(
                404, f"rule {name!r} does not apply to {master_path!r} (its masters: {globs})", {"rule": name}
            )
        return rule

    def enhance_for(self, master_path: str) -> str:
        """ "never" when a rule covering this master forbids super-resolution, else "auto"."""
        return "never" if any(r.enhance == "never" for r in self.rules_for(master_path)) else "auto"
